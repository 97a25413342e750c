import uuid

from django.conf import settings
from django.db import models


class JobState(models.TextChoices):
    """Job states, named as in BullMQ so client apps can reuse their vocabulary."""

    WAITING = "waiting", "waiting"
    DELAYED = "delayed", "delayed"
    ACTIVE = "active", "active"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


class ErrorKind(models.TextChoices):
    RETRYABLE = "retryable", "retryable"
    TERMINAL = "terminal", "terminal"
    STALLED = "stalled", "stalled (lease expired)"
    UNEXPECTED = "unexpected", "unexpected exception"


class Job(models.Model):
    """A unit of background work; the database row is the source of truth.

    The broker only carries wake-ups that tell a worker of the job's queue to claim the
    next due job, so losing a wake-up delays a job but never loses it.
    `priority` orders waiting jobs: a higher number is claimed first.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    queue = models.CharField(max_length=32)
    task = models.CharField(max_length=100)
    # job_owner_created below starts with owner, so the foreign key needs no index of its own.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs",
        db_index=False,
    )
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.WAITING)
    priority = models.SmallIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts_made = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    backoff = models.JSONField(default=dict, blank=True)
    run_at = models.DateTimeField(help_text="When the job becomes due.")
    # Unique through Meta.constraints, which spares PostgreSQL the pattern-matching index
    # that unique=True adds to a CharField; keys are only ever looked up whole.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    rate_limited = models.BooleanField(default=False, help_text="Counts against the queue's rate limit.")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100, blank=True, help_text="Host and process id of the last worker.")
    wakeup_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dead_lettered_at = models.DateTimeField(null=True, blank=True)
    dead_letter_hook_ran_at = models.DateTimeField(
        null=True, blank=True, help_text="When the task's on_dead_letter hook ran for this dead letter."
    )
    claim_alone = models.BooleanField(
        default=False,
        help_text="A worker died holding this job among others; it is now claimed on its own.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The claim query: due waiting jobs of one queue by priority, then due time.
            models.Index(
                "queue",
                models.F("priority").desc(),
                "run_at",
                "id",
                condition=models.Q(state="waiting"),
                name="job_claim",
            ),
            models.Index(fields=["run_at"], condition=models.Q(state="delayed"), name="job_delayed_due"),
            models.Index(fields=["lease_expires_at"], condition=models.Q(state="active"), name="job_lease"),
            models.Index(fields=["queue", "state"], name="job_queue_state"),
            models.Index(fields=["state", "finished_at"], name="job_state_finished"),
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_max_100"),
            models.UniqueConstraint(fields=["idempotency_key"], name="job_unique_idempotency_key"),
        ]

    def __str__(self):
        return f"{self.task} {self.id}"

    @property
    def is_dead_letter(self):
        return self.state == JobState.FAILED and self.dead_lettered_at is not None


class JobAttempt(models.Model):
    """One run of a job by a worker; also the ledger the queue rate limit counts."""

    # jobattempt_unique_number starts with job, so the foreign key needs no index of its own.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    queue = models.CharField(max_length=32)
    number = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True)
    error = models.TextField(blank=True)
    rate_limited = models.BooleanField(default=False)

    class Meta:
        ordering = ["job", "number"]
        indexes = [models.Index(fields=["queue", "started_at"], name="jobattempt_queue_started")]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="jobattempt_unique_number")]

    def __str__(self):
        return f"attempt {self.number} of {self.job_id}"


class JobLog(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["job", "id"]

    def __str__(self):
        return self.message[:80]


class QueueState(models.Model):
    """Per-queue switches shared by every host; the row also serialises rate-limited claims."""

    name = models.CharField(max_length=32, primary_key=True)
    paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class DispatcherHeartbeat(models.Model):
    """The last time each dispatcher process finished a pass."""

    name = models.CharField(max_length=100, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} at {self.beat_at}"


class QueueOverview(QueueState):
    """A proxy that gives the admin's queue overview page its entry in the admin index."""

    class Meta:
        proxy = True
        verbose_name = "queue overview"
        verbose_name_plural = "queue overview"
