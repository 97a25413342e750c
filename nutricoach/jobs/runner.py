"""The worker side: Django-Q2 calls wake(queue), which claims and runs due jobs."""

import inspect
import json
import logging
import time

from django.db import DatabaseError, close_old_connections

from nutricoach.jobs import registry, services, wakeups
from nutricoach.jobs.errors import RateLimitedError, RetryableError, TerminalError
from nutricoach.jobs.models import ErrorKind

logger = logging.getLogger(__name__)

# A wake-up keeps claiming jobs until none is due, so one wake-up can serve many jobs.
# Past this many it hands over to a fresh wake-up, so a long backlog cannot pin a worker
# past the cluster timeout.
MAX_JOBS_PER_WAKEUP = 50


class JobContext:
    """The handler's view of its job: progress, log lines and the lease."""

    def __init__(self, job):
        self.job = job
        self.attempt = job.attempts_made
        self.is_last_attempt = job.attempts_made >= job.max_attempts

    def progress(self, value, message=None):
        """Set progress (0 to 100), optionally with a log line."""
        services.set_progress(self.job, value, message)

    def log(self, message, *, level="info"):
        services.add_log(self.job.id, message, level=level)

    def extend_lease(self, seconds=None):
        """Keep the job from being declared stalled during long work."""
        return services.extend_lease(self.job, seconds)


def run_job(job):
    """Run one claimed job's handler and record the outcome."""
    started = time.monotonic()
    try:
        spec = registry.get_task(job.task)
        context = JobContext(job)
        try:
            inspect.signature(spec.func).bind(context, **job.payload)
        except TypeError as exc:
            raise TerminalError(f"payload does not match the handler of {job.task}: {exc}") from exc
        result = spec.func(context, **job.payload)
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TerminalError(f"{job.task} returned a result that is not JSON: {exc}") from exc
    except TerminalError as exc:
        services.fail(job, error=exc, kind=ErrorKind.TERMINAL, duration_ms=_since(started))
    except RetryableError as exc:
        services.fail(
            job, error=exc, kind=ErrorKind.RETRYABLE, retry_after=exc.retry_after, duration_ms=_since(started),
            rate_limited=isinstance(exc, RateLimitedError),
        )
    except registry.UnknownTaskError as exc:
        services.fail(job, error=exc, kind=ErrorKind.TERMINAL, duration_ms=_since(started))
    except Exception as exc:
        logger.exception("job %s raised an unexpected error", job.id)
        services.fail(job, error=_describe(exc), kind=ErrorKind.UNEXPECTED, duration_ms=_since(started))
    else:
        services.complete(job, result, duration_ms=_since(started))


def wake(queue):
    """Claim and run due jobs of `queue` until none is left; return how many ran."""
    started = time.monotonic()
    # Django-Q2 allows a wake-up the job timeout plus the claim window (see settings),
    # so only jobs claimed within the window are sure of their full timeout.
    claim_seconds = services.queue_config(queue).get("claim_window", 0)
    ran = 0
    while ran < MAX_JOBS_PER_WAKEUP and (ran == 0 or time.monotonic() - started < claim_seconds):
        try:
            job = services.claim_next(queue)
        except DatabaseError:
            # The dispatcher resends wake-ups for jobs left waiting, so giving up is safe.
            logger.warning("claiming a job of queue %s failed", queue, exc_info=True)
            close_old_connections()
            return ran
        if job is None:
            return ran
        run_job(job)
        ran += 1
    wakeups.push(queue)
    return ran


def run_until_idle(queue=None, *, max_jobs=1000):
    """Run due jobs in this process until none is left; for tests and the shell."""
    from django.conf import settings

    queues = [queue] if queue else list(settings.JOB_QUEUES)
    ran = 0
    progress = True
    while progress and ran < max_jobs:
        progress = False
        for name in queues:
            job = services.claim_next(name)
            if job is not None:
                run_job(job)
                ran += 1
                progress = True
    return ran


def _since(started):
    return int((time.monotonic() - started) * 1000)


def _describe(exc):
    return f"{type(exc).__name__}: {exc}"
