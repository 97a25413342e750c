from datetime import datetime
from uuid import UUID

from django.http import Http404
from ninja import Router, Schema
from ninja.errors import HttpError

from nutricoach.jobs import selectors

router = Router(tags=["jobs"])

LOG_LINES_SHOWN = 20


class JobStatusOut(Schema):
    id: UUID
    queue: str
    task: str
    state: str
    dead_lettered: bool
    progress: int
    attempts_made: int
    max_attempts: int
    payload: dict
    result: dict | list | str | int | float | None
    error: str | None
    error_kind: str | None
    logs: list[str]
    created_at: datetime
    run_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_status(job):
    logs = list(job.logs.order_by("-id").values_list("message", flat=True)[:LOG_LINES_SHOWN])
    return {
        "id": job.id,
        "queue": job.queue,
        "task": job.task,
        "state": job.state,
        "dead_lettered": job.dead_lettered_at is not None,
        "progress": job.progress,
        "attempts_made": job.attempts_made,
        "max_attempts": job.max_attempts,
        "payload": job.payload,
        "result": job.result,
        # The summary only: the first line of the error, never a traceback.
        "error": job.error.splitlines()[0][:500] if job.error else None,
        "error_kind": job.error_kind or None,
        "logs": logs[::-1],
        "created_at": job.created_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


@router.get("/{job_id}", response=JobStatusOut, summary="Job status")
def get_job(request, job_id: UUID):
    """Return a job's state, progress, attempts and outcome; 404 unless the caller owns it."""
    job = selectors.job_for_owner(job_id, request.auth)
    if job is None:
        raise Http404(f"No job {job_id} for this account.")
    return job_status(job)


queues_router = Router(tags=["queues"])


@queues_router.get("", response=list[selectors.QueueMetrics], summary="Queue metrics (staff)")
def list_queue_metrics(request):
    """Return the job counts of every queue; staff only."""
    if not request.auth.is_staff:
        raise HttpError(403, "Queue metrics are for staff accounts.")
    return selectors.queue_metrics()
