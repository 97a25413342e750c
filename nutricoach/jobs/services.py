"""Writes on jobs: enqueue, claim, finish, retry, dead-letter, replay, cancel, pause."""

import logging
import math
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from nutricoach.jobs import fastpath, registry, wakeups
from nutricoach.jobs.backoff import Backoff
from nutricoach.jobs.models import ErrorKind, Job, JobAttempt, JobLog, JobState, QueueState

logger = logging.getLogger(__name__)



def worker_name():
    # Computed per call: Django-Q2 forks its workers after this module is imported.
    return f"{socket.gethostname()}:{os.getpid()}"


class EnqueueError(ValueError):
    """The job request is invalid; nothing was written."""


@dataclass(frozen=True)
class EnqueueResult:
    job: Job
    created: bool


def queue_config(queue):
    try:
        return settings.JOB_QUEUES[queue]
    except KeyError:
        raise EnqueueError(
            f"Unknown queue {queue!r}; configured queues are {', '.join(settings.JOB_QUEUES)}."
        ) from None


def lease_seconds(queue):
    # A job may be claimed at the end of its wake-up's claim window and then run the full
    # job timeout. The grace period lets Django-Q2 kill a hung worker before the job is
    # declared stalled, so a job never runs in two workers at once.
    config = queue_config(queue)
    return config["timeout"] + config.get("claim_window", 0) + settings.JOB_LEASE_GRACE_SECONDS


def task_and_queue(task, queue=None):
    """Return the task's registration and the queue its jobs go to (`queue`, or the task's own).

    Raise EnqueueError for an unknown task or queue.
    """
    try:
        spec = registry.get_task(task)
    except registry.UnknownTaskError as exc:
        raise EnqueueError(str(exc)) from None
    queue = queue or spec.queue
    queue_config(queue)
    return spec, queue


def enqueue(
    task,
    payload=None,
    *,
    queue=None,
    owner=None,
    priority=None,
    attempts=None,
    backoff=None,
    idempotency_key=None,
    run_at=None,
    rate_limited=False,
    job_id=None,
):
    """Write a job and send its queue a wake-up once the transaction commits.

    With an `idempotency_key` that an earlier job already has, return that job with
    created=False instead of writing a second one. Raise EnqueueError for an unknown
    task or queue, a payload that is not a JSON object, or attempts below 1.
    """
    spec, queue = task_and_queue(task, queue)
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        raise EnqueueError(f"Job payload must be a JSON object, got {type(payload).__name__}.")
    attempts = spec.attempts if attempts is None else attempts
    if attempts < 1:
        raise EnqueueError(f"attempts must be at least 1, got {attempts}.")
    backoff = backoff or spec.backoff
    if not isinstance(backoff, Backoff):
        raise EnqueueError("backoff must be a Backoff instance.")

    now = timezone.now()
    due = run_at is None or run_at <= now
    fields = {
        "id": job_id or uuid.uuid4(),
        "queue": queue,
        "task": task,
        "owner": owner,
        "payload": payload,
        "state": JobState.WAITING if due else JobState.DELAYED,
        "priority": spec.priority if priority is None else priority,
        "max_attempts": attempts,
        "backoff": backoff.to_dict(),
        "run_at": now if due else run_at,
        "rate_limited": rate_limited,
        "idempotency_key": idempotency_key,
        "wakeup_sent_at": now if due else None,
    }
    if idempotency_key:
        existing = Job.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            logger.info("job %s already exists for idempotency key %s", existing.id, idempotency_key)
            return EnqueueResult(existing, False)
        try:
            with transaction.atomic():
                job = Job.objects.create(**fields)
        except IntegrityError:
            existing = Job.objects.get(idempotency_key=idempotency_key)
            logger.info("job %s already exists for idempotency key %s", existing.id, idempotency_key)
            return EnqueueResult(existing, False)
    else:
        job = Job.objects.create(**fields)

    if due:
        wakeups.push_on_commit(queue)
    logger.debug("job enqueued id=%s queue=%s task=%s state=%s", job.id, queue, task, job.state)
    return EnqueueResult(job, True)


@dataclass(frozen=True)
class JobRequest:
    """One job of a bulk enqueue."""

    payload: dict
    idempotency_key: str | None = None
    owner_id: int | None = None


# Rows per INSERT statement of a bulk enqueue.
BULK_INSERT_BATCH_SIZE = 1000


def enqueue_many(task, requests, *, queue=None, priority=None, attempts=None, backoff=None):
    """Write many due jobs of one task with bulk inserts; return how many were new.

    A request whose idempotency key an existing job already has is skipped, as enqueue()
    would return that job. The queue gets one wake-up per new job, at most one per
    worker, once the transaction commits. Raise EnqueueError as enqueue() does.
    """
    spec, queue = task_and_queue(task, queue)
    config = queue_config(queue)
    attempts = spec.attempts if attempts is None else attempts
    if attempts < 1:
        raise EnqueueError(f"attempts must be at least 1, got {attempts}.")
    backoff = (backoff or spec.backoff).to_dict()
    requests = list(requests)
    if not requests:
        return 0
    for request in requests:
        if not isinstance(request.payload, dict):
            raise EnqueueError(f"Job payload must be a JSON object, got {type(request.payload).__name__}.")

    # A key given twice in one call makes one job, as two enqueue() calls would.
    unique, seen = [], set()
    for request in requests:
        if request.idempotency_key:
            if request.idempotency_key in seen:
                continue
            seen.add(request.idempotency_key)
        unique.append(request)
    requests = unique

    keys = [request.idempotency_key for request in requests if request.idempotency_key]
    existing = set(Job.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True))
    now = timezone.now()
    jobs = [
        Job(
            queue=queue,
            task=task,
            owner_id=request.owner_id,
            payload=request.payload,
            state=JobState.WAITING,
            priority=spec.priority if priority is None else priority,
            max_attempts=attempts,
            backoff=backoff,
            run_at=now,
            idempotency_key=request.idempotency_key,
            wakeup_sent_at=now,
        )
        for request in requests
        if request.idempotency_key not in existing
    ]
    # A concurrent enqueue may write one of the keys after the check above; the unique
    # key then makes the database skip that row.
    created = Job.objects.bulk_create(jobs, ignore_conflicts=True, batch_size=BULK_INSERT_BATCH_SIZE)
    if created:
        wakeups.push_on_commit(queue, min(len(created), config["workers"]))
    logger.info("bulk enqueue of %s: %s new jobs of %s requested", task, len(created), len(requests))
    return len(created)


def add_log(job_id, message, *, level="info"):
    JobLog.objects.create(job_id=job_id, message=message, level=level)


def _rate_limit_full(queue, now):
    config = queue_config(queue)
    limit = config.get("rate_limit")
    if not limit:
        return False
    window_start = now - timedelta(seconds=config.get("rate_window", 60))
    started = JobAttempt.objects.filter(queue=queue, rate_limited=True, started_at__gt=window_start).count()
    return started >= limit


_known_queue_states = set()


def _ensure_queue_state(queue):
    # The row must exist before claims can lock it.
    if queue not in _known_queue_states:
        QueueState.objects.get_or_create(name=queue)
        _known_queue_states.add(queue)


def claim_next(queue):
    """Claim the next due waiting job of `queue` for this worker, or return None.

    Jobs are taken by priority (highest first), then due time, then id. A paused queue
    gives nothing. When the queue's rate limit is used up, rate-limited jobs stay waiting
    (spending no attempt) and other jobs of the queue may still run. On PostgreSQL a
    rate-limited queue serves its jobs outside the limit before the limited ones.
    """
    now = timezone.now()
    config = queue_config(queue)
    if not settings.DATABASE_IS_SQLITE:
        # Jobs outside the rate limit need no queue lock, so they take the one-statement
        # claim even on a rate-limited queue.
        lease = now + timedelta(seconds=lease_seconds(queue))
        job = fastpath.claim(
            queue, now=now, lease_expires_at=lease, worker=worker_name(),
            include_rate_limited=not config.get("rate_limit"),
        )
        if job is not None or not config.get("rate_limit"):
            return job
    return _claim_locked(queue, config)


@dataclass(frozen=True)
class FinishedJob:
    """A job that ran successfully and whose result claim_batch is to store."""

    job: Job
    result_json: str
    started_at: datetime
    finished_at: datetime

    @property
    def duration_ms(self):
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


def claim_batch(queue, *, finished=(), unstarted=(), limit):
    """Store `finished` jobs, hand back `unstarted` ones, and claim up to `limit` jobs.

    PostgreSQL only; one statement does all three. Jobs come in the order claim_next
    would give them, and they share their claim time, which is how recover_stalled
    identifies a batch. A job marked claim_alone comes in a batch of its own. Handed-back
    jobs go back to waiting without spending an attempt, and the caller wakes the queue
    for them. When no other job is due, a rate-limited queue's limited jobs are claimed
    one at a time under the queue lock.
    """
    now = timezone.now()
    config = queue_config(queue)
    claimed, stored = fastpath.run_batch(
        queue,
        ran=[(item.job, item.result_json, item.started_at, item.finished_at) for item in finished],
        unstarted=unstarted,
        limit=limit,
        now=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds(queue)),
        worker=worker_name(),
        include_rate_limited=not config.get("rate_limit"),
    )
    for item in finished:
        _log_completion(item.job, stored=item.job.id in stored, duration_ms=item.duration_ms)
    if unstarted:
        logger.info("handed back %d claimed jobs of queue %s unstarted", len(unstarted), queue)
    if not claimed and limit > 0 and config.get("rate_limit"):
        job = _claim_locked(queue, config)
        claimed = [job] if job is not None else []
    return claimed


def _claim_locked(queue, config):
    now = timezone.now()
    if config.get("rate_limit"):
        _ensure_queue_state(queue)

    with transaction.atomic():
        # Locking the queue row serialises claims of one queue across hosts, which keeps
        # the rate-limit count exact. Unlimited queues skip the lock.
        states = QueueState.objects.filter(name=queue)
        if config.get("rate_limit"):
            states = states.select_for_update()
        state = states.first()
        if state is None and config.get("rate_limit"):
            # The cached row was deleted (a test flush, a manual cleanup): recreate and lock it.
            QueueState.objects.get_or_create(name=queue)
            state = states.first()
        if state is not None and state.paused:
            return None
        candidates = Job.objects.filter(queue=queue, state=JobState.WAITING, run_at__lte=now)
        if config.get("rate_limit") and _rate_limit_full(queue, now):
            candidates = candidates.filter(rate_limited=False)
        if not settings.DATABASE_IS_SQLITE:
            # SQLite's IMMEDIATE transactions already hold the write lock here.
            candidates = candidates.select_for_update(skip_locked=True)
        job = candidates.order_by("-priority", "run_at", "id").first()
        if job is None:
            return None

        job.state = JobState.ACTIVE
        job.attempts_made += 1
        job.started_at = now
        job.lease_expires_at = now + timedelta(seconds=lease_seconds(queue))
        job.worker = worker_name()
        job.save(update_fields=["state", "attempts_made", "started_at", "lease_expires_at", "worker", "updated_at"])
        JobAttempt.objects.create(
            job=job,
            queue=queue,
            number=job.attempts_made,
            worker=job.worker,
            started_at=now,
            rate_limited=job.rate_limited,
        )
    return job


def _current(job):
    """Filter the job row as long as it still belongs to this attempt.

    The worker is compared too, because a batch handed back lowers attempts_made again,
    so the next claim reuses the attempt number.
    """
    return Job.objects.filter(id=job.id, state=JobState.ACTIVE, attempts_made=job.attempts_made, worker=job.worker)


def _close_attempt(job, outcome, error="", now=None):
    JobAttempt.objects.filter(job_id=job.id, number=job.attempts_made).update(
        finished_at=now or timezone.now(), outcome=outcome, error=error[:2000]
    )


def complete(job, result, *, duration_ms):
    """Store the result of a successful attempt; return False if the lease was lost."""
    now = timezone.now()
    if not settings.DATABASE_IS_SQLITE:
        updated = fastpath.complete(job, result, now=now)
    else:
        updated = _complete_with_orm(job, result, now=now)
    _log_completion(job, stored=bool(updated), duration_ms=duration_ms)
    return bool(updated)


def _log_completion(job, *, stored, duration_ms):
    if stored:
        logger.info(
            "job completed id=%s queue=%s task=%s attempt=%s duration_ms=%d",
            job.id, job.queue, job.task, job.attempts_made, duration_ms,
        )
    else:
        logger.warning("job %s finished after losing its lease; its result was not stored", job.id)


def _complete_with_orm(job, result, *, now):
    with transaction.atomic():
        updated = _current(job).update(
            state=JobState.COMPLETED,
            progress=100,
            result=result,
            error="",
            error_kind="",
            finished_at=now,
            lease_expires_at=None,
            updated_at=now,
        )
        if updated:
            _close_attempt(job, "completed", now=now)
    return updated


# The maximum wait an error may request before the next attempt, because a longer
# Retry-After would park the job for good.
MAX_RETRY_AFTER_SECONDS = 3600
# An upstream rate limit gives the job an extra attempt at most this many times, so a
# limit that never lifts still ends in a dead letter.
MAX_RATE_LIMIT_WAITS = 10
RATE_LIMITED_OUTCOME = "rate_limited"


def fail(job, *, error, kind, retry_after=None, duration_ms=0, now=None, rate_limited=False, expired_before=None):
    """Record a failed attempt: schedule the next one, or dead-letter the job.

    A terminal error, or the last allowed attempt, dead-letters the job with its payload
    and error kept for replay. An upstream rate limit (`rate_limited`) does not spend an
    attempt: the job gets one more, up to MAX_RATE_LIMIT_WAITS times. A `retry_after`
    that is not a finite number is ignored, and one above MAX_RETRY_AFTER_SECONDS is
    cut to it. With `expired_before`, the failure is recorded only if the lease expired
    before that time, so a worker that just extended its lease keeps its job. Return the
    new state, or None if the lease was lost.
    """
    now = now or timezone.now()
    error = str(error)[:10_000] or kind
    if retry_after is not None:
        retry_after = min(retry_after, MAX_RETRY_AFTER_SECONDS) if math.isfinite(retry_after) else None
    outcome = kind
    extra = {}
    if rate_limited and kind == ErrorKind.RETRYABLE:
        waits = JobAttempt.objects.filter(job_id=job.id, outcome=RATE_LIMITED_OUTCOME).count()
        if waits < MAX_RATE_LIMIT_WAITS:
            outcome = RATE_LIMITED_OUTCOME
            extra["max_attempts"] = F("max_attempts") + 1
    retry = kind != ErrorKind.TERMINAL and (job.attempts_made < job.max_attempts or bool(extra))
    if retry:
        delay = retry_after if retry_after is not None else Backoff.from_dict(job.backoff).delay_after(job.attempts_made)
        changes = {
            "state": JobState.DELAYED if delay > 0 else JobState.WAITING,
            "run_at": now + timedelta(seconds=delay),
            "wakeup_sent_at": None if delay > 0 else now,
        }
    else:
        changes = {"state": JobState.FAILED, "finished_at": now, "dead_lettered_at": now}

    rows = _current(job)
    if expired_before is not None:
        rows = rows.filter(lease_expires_at__lt=expired_before)
    with transaction.atomic():
        updated = rows.update(error=error, error_kind=kind, lease_expires_at=None, updated_at=now, **changes, **extra)
        if updated:
            _close_attempt(job, outcome, error, now=now)
            add_log(job.id, f"attempt {job.attempts_made} failed ({kind}): {error[:500]}", level="error")
            if retry and changes["state"] == JobState.WAITING:
                wakeups.push_on_commit(job.queue)
    if not updated:
        logger.warning("job %s failed after losing its lease; the failure was not stored", job.id)
        return None

    if retry:
        logger.warning(
            "job retry scheduled id=%s queue=%s task=%s attempt=%s of %s in %.1fs duration_ms=%d error=%s",
            job.id, job.queue, job.task, job.attempts_made, job.max_attempts,
            (changes["run_at"] - now).total_seconds(), duration_ms, error[:200],
        )
    else:
        logger.error(
            "job failed id=%s queue=%s task=%s attempt=%s of %s kind=%s duration_ms=%d error=%s",
            job.id, job.queue, job.task, job.attempts_made, job.max_attempts, kind, duration_ms, error[:200],
        )
        _run_dead_letter_hook(job, error)
    return changes["state"]


def _run_dead_letter_hook(job, error):
    """Run the task's on_dead_letter hook, then record that it ran, even when it raised.

    A hook that raises is logged and not retried, so a broken hook cannot loop.
    """
    try:
        hook = registry.get_task(job.task).on_dead_letter
    except registry.UnknownTaskError:
        hook = None
    if hook is not None:
        try:
            hook(job, error)
        except Exception:
            logger.exception("dead-letter hook of job %s (%s) failed", job.id, job.task)
    Job.objects.filter(id=job.id, dead_letter_hook_ran_at__isnull=True).update(dead_letter_hook_ran_at=timezone.now())


def run_missed_dead_letter_hooks(*, older_than_seconds=60, limit=100):
    """Run the hooks of dead letters whose process died before it ran them; return how many.

    Hooks are idempotent (they record a failure on the job's subject), so a hook that
    ran but whose mark was lost runs again harmlessly.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    missed = list(
        Job.objects.filter(
            state=JobState.FAILED, dead_lettered_at__lt=cutoff, dead_letter_hook_ran_at__isnull=True
        ).order_by("dead_lettered_at")[:limit]
    )
    for job in missed:
        logger.warning("running the missed dead-letter hook of job %s (%s)", job.id, job.task)
        _run_dead_letter_hook(job, job.error)
    return len(missed)


def set_progress(job, value, message=None):
    value = max(0, min(100, int(value)))
    if not settings.DATABASE_IS_SQLITE:
        return fastpath.record_progress(job, value, message, now=timezone.now())
    updated = _current(job).update(progress=value, updated_at=timezone.now())
    if updated and message:
        add_log(job.id, message)
    return bool(updated)


def extend_lease(job, seconds=None):
    """Move the lease of `job`, and of the jobs claimed in its batch, to `seconds` from now.

    A batch keeps one lease, so recover_stalled finds it whole when its worker dies. A job
    left behind alone would be charged a stalled attempt that it may never have started.
    """
    seconds = seconds or lease_seconds(job.queue)
    expires = timezone.now() + timedelta(seconds=seconds)
    if not _current(job).update(lease_expires_at=expires):
        return False
    Job.objects.filter(state=JobState.ACTIVE, worker=job.worker, started_at=job.started_at).exclude(
        id=job.id
    ).update(lease_expires_at=expires)
    return True


def recover_stalled(*, limit=500):
    """Deal with active jobs whose lease expired; return how many.

    A job its worker held alone counts as a failed attempt, so a job that kills its
    worker every time ends as a dead letter. Jobs a worker held as a batch (same worker,
    same claim time) cannot be distinguished: one of them was running, the others had
    finished or not started. They all go back to waiting without spending an attempt,
    and are marked claim_alone, so each runs in a batch of its own from then on and the
    next death, if any, is charged to the right job.
    """
    now = timezone.now()
    stalled = list(
        Job.objects.filter(state=JobState.ACTIVE, lease_expires_at__lt=now).order_by("lease_expires_at")[:limit]
    )
    holders = {(job.worker, job.started_at) for job in stalled}
    for worker, claimed_at in holders:
        # The lock makes a concurrent sweep wait for the whole batch, so that it cannot
        # find its last job alone and charge it.
        with transaction.atomic():
            batch = list(Job.objects.select_for_update().filter(
                state=JobState.ACTIVE, worker=worker, started_at=claimed_at, lease_expires_at__lt=now
            ).order_by("-priority", "run_at", "id"))
            # Jobs of the batch that failed since keep their claim time, and one of them
            # may be what stopped the worker (in its dead-letter hook, say).
            claimed_together = len(batch) + Job.objects.filter(worker=worker, started_at=claimed_at).exclude(
                state=JobState.ACTIVE
            ).count()
            handed_back_to = None
            if claimed_together > 1:
                handed_back_to = _hand_back_stalled_batch(batch, claimed_together=claimed_together, now=now)
        if handed_back_to is not None:
            for queue in handed_back_to:
                wakeups.push(queue, queue_config(queue)["workers"])
            continue
        for job in batch:
            logger.warning(
                "job stalled id=%s queue=%s task=%s attempt=%s worker=%s", job.id, job.queue, job.task,
                job.attempts_made, job.worker,
            )
            fail(
                job, error=f"lease expired: worker {job.worker} stopped responding", kind=ErrorKind.STALLED,
                now=now, expired_before=now,
            )
    return len(stalled)


def _hand_back_stalled_batch(jobs, *, claimed_together, now):
    """Return the jobs to waiting without spending an attempt; return the queues to wake."""
    message = (
        f"worker {jobs[0].worker} stopped responding while it held this job in a batch of {claimed_together}; "
        "back to waiting without spending an attempt, and claimed on its own from now on"
    )
    queues = set()
    for job in jobs:
        with transaction.atomic():
            updated = _current(job).filter(lease_expires_at__lt=now).update(
                state=JobState.WAITING, attempts_made=F("attempts_made") - 1, lease_expires_at=None, worker="",
                claim_alone=True, wakeup_sent_at=now, updated_at=now,
            )
            if updated:
                JobAttempt.objects.filter(job_id=job.id, number=job.attempts_made).delete()
                add_log(job.id, message, level="warning")
                queues.add(job.queue)
        if updated:
            logger.warning(
                "job stalled in a batch id=%s queue=%s task=%s worker=%s batch=%d; handed back",
                job.id, job.queue, job.task, job.worker, claimed_together,
            )
    return queues


def promote_due_delayed(*, limit=1000):
    """Move delayed jobs that are due to waiting and wake their queues; return how many."""
    now = timezone.now()
    due = list(
        Job.objects.filter(state=JobState.DELAYED, run_at__lte=now).order_by("run_at").values_list("id", "queue")[:limit]
    )
    if not due:
        return 0
    ids = [job_id for job_id, _ in due]
    Job.objects.filter(id__in=ids, state=JobState.DELAYED).update(
        state=JobState.WAITING, wakeup_sent_at=now, updated_at=now
    )
    counts = {}
    for _, queue in due:
        counts[queue] = counts.get(queue, 0) + 1
    for queue, count in counts.items():
        wakeups.push(queue, min(count, queue_config(queue)["workers"]))
    return len(due)


# When each queue was last re-woken by this process.
_last_rewake = {}


def resend_lost_wakeups(*, older_than_seconds=3.0, force=False):
    """Wake queues with due waiting jobs that got no wake-up recently; return queues woken.

    Covers wake-ups lost by the broker (a Redis flush or restart, a killed worker that
    had pulled them) and jobs held back by a full rate limit. Each queue gets as many
    wake-ups as it has workers, at most once per `older_than_seconds` unless `force`.
    That is enough for any backlog, because a wake-up keeps claiming and hands over to a
    fresh wake-up when it stops early. No job row is written.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    woken = []
    for queue, config in settings.JOB_QUEUES.items():
        if not force and _last_rewake.get(queue, cutoff) > cutoff:
            continue
        stale = (
            Job.objects.filter(queue=queue, state=JobState.WAITING, run_at__lte=now)
            .exclude(wakeup_sent_at__gt=cutoff)
            .exists()
        )
        if stale:
            wakeups.push(queue, config["workers"])
            _last_rewake[queue] = now
            woken.append(queue)
    return woken


def replay(job, *, note=""):
    """Give a dead-lettered or failed job one more attempt, keeping its history."""
    now = timezone.now()
    updated = Job.objects.filter(id=job.id, state__in=[JobState.FAILED, JobState.CANCELLED]).update(
        state=JobState.WAITING,
        max_attempts=job.attempts_made + 1,
        run_at=now,
        dead_lettered_at=None,
        dead_letter_hook_ran_at=None,
        finished_at=None,
        progress=0,
        wakeup_sent_at=now,
        updated_at=now,
    )
    if updated:
        add_log(job.id, f"replayed by staff{': ' + note if note else ''}")
        wakeups.push_on_commit(job.queue)
    return bool(updated)


def retry_now(job):
    """Make a delayed job due now."""
    now = timezone.now()
    updated = Job.objects.filter(id=job.id, state=JobState.DELAYED).update(
        state=JobState.WAITING, run_at=now, wakeup_sent_at=now, updated_at=now
    )
    if updated:
        add_log(job.id, "retried now by staff")
        wakeups.push_on_commit(job.queue)
    return bool(updated)


def cancel(job, *, reason="cancelled by staff"):
    """Cancel a waiting or delayed job, or discard a dead letter."""
    now = timezone.now()
    updated = Job.objects.filter(id=job.id, state__in=[JobState.WAITING, JobState.DELAYED, JobState.FAILED]).update(
        state=JobState.CANCELLED, finished_at=now, updated_at=now
    )
    if updated:
        add_log(job.id, reason)
    return bool(updated)


def set_paused(queue, paused):
    queue_config(queue)
    now = timezone.now()
    QueueState.objects.update_or_create(name=queue, defaults={"paused": paused, "paused_at": now if paused else None})
    logger.info("queue %s %s", queue, "paused" if paused else "resumed")
    if not paused:
        resend_lost_wakeups(older_than_seconds=0, force=True)
