"""Reads on jobs shared by the admin, the API, the metrics endpoint and the dispatcher."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from nutricoach.jobs.models import Job, JobState, QueueState


@dataclass(frozen=True)
class QueueMetrics:
    name: str
    waiting: int
    active: int
    completed: int
    failed: int
    dead_lettered: int
    delayed: int
    cancelled: int
    paused: bool
    total: int
    oldest_waiting_age_seconds: float | None


def queue_metrics():
    """Return counts per state and the oldest waiting job's age for every configured queue."""
    now = timezone.now()
    rows = (
        Job.objects.values("queue")
        .annotate(
            waiting=Count("id", filter=Q(state=JobState.WAITING)),
            active=Count("id", filter=Q(state=JobState.ACTIVE)),
            completed=Count("id", filter=Q(state=JobState.COMPLETED)),
            failed=Count("id", filter=Q(state=JobState.FAILED)),
            dead_lettered=Count("id", filter=Q(state=JobState.FAILED, dead_lettered_at__isnull=False)),
            delayed=Count("id", filter=Q(state=JobState.DELAYED)),
            cancelled=Count("id", filter=Q(state=JobState.CANCELLED)),
            total=Count("id"),
            oldest_waiting=Min("run_at", filter=Q(state=JobState.WAITING)),
        )
        .order_by()
    )
    by_queue = {row["queue"]: row for row in rows}
    paused = set(QueueState.objects.filter(paused=True).values_list("name", flat=True))

    metrics = []
    for name in settings.JOB_QUEUES:
        row = by_queue.get(name, {})
        oldest = row.get("oldest_waiting")
        metrics.append(QueueMetrics(
            name=name,
            waiting=row.get("waiting", 0),
            active=row.get("active", 0),
            completed=row.get("completed", 0),
            failed=row.get("failed", 0),
            dead_lettered=row.get("dead_lettered", 0),
            delayed=row.get("delayed", 0),
            cancelled=row.get("cancelled", 0),
            paused=name in paused,
            total=row.get("total", 0),
            oldest_waiting_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else None,
        ))
    return metrics


def job_for_owner(job_id, owner):
    """Return the owner's job with this id, or None."""
    return Job.objects.filter(id=job_id, owner=owner).first()
