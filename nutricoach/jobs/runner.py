"""The worker side: Django-Q2 calls wake(queue), which claims and runs due jobs.

On PostgreSQL a wake-up claims jobs in batches: one statement stores the results of
the batch just run and claims the next one. Each statement cost about half a
millisecond on the benchmark machine whatever it did, so for jobs that take a
millisecond or less, batching is what makes the job table cheap. The batch size
follows how long the queue's jobs have taken in this process, so that a batch contains
about BATCH_SECONDS of work: jobs that take that long or longer are claimed one at a
time, as on SQLite. What a batch costs:
- A high-priority job enqueued while every worker is busy with a batch waits for one
  of them to finish it, about BATCH_SECONDS.
- Results of a batch become visible when the batch ends, not when each job ends.
- A worker that dies loses the results of its batch: those jobs run again. See
  services.recover_stalled for how attempts are counted then.
"""

import functools
import inspect
import json
import logging
import time
from collections import deque

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from nutricoach.jobs import registry, services, wakeups
from nutricoach.jobs.errors import RateLimitedError, RetryableError, TerminalError
from nutricoach.jobs.models import ErrorKind

logger = logging.getLogger(__name__)

# A wake-up keeps claiming jobs until none is due, so one wake-up can serve many jobs.
# It stops claiming when the claim window ends (see wake), or past this many jobs, and
# hands over to a fresh wake-up, so that the worker regularly finishes a Django-Q2 task
# and Django-Q2 can recycle it.
MAX_JOBS_PER_WAKEUP = 500

# A batch contains about this much work, judged by the queue's recent job durations.
BATCH_SECONDS = 0.02
MAX_BATCH = 100
# How much each finished job moves this process's estimate of a queue's job duration.
DURATION_WEIGHT = 0.2

# Queue name to the estimated seconds a job of it takes, in this process.
_durations = {}


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


def run_job(job, *, store_result=True):
    """Run one claimed job's handler and record the outcome.

    With store_result=False a successful result is not stored here but returned as JSON
    text, so that the caller can store several at once. Otherwise return None.
    """
    started = time.monotonic()
    deferred = None
    try:
        spec = registry.get_task(job.task)
        context = JobContext(job)
        try:
            _signature(spec.func).bind(context, **job.payload)
        except TypeError as exc:
            raise TerminalError(f"payload does not match the handler of {job.task}: {exc}") from exc
        result = spec.func(context, **job.payload)
        try:
            result_json = json.dumps(result, allow_nan=False)
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
        if store_result:
            services.complete(job, result, duration_ms=_since(started))
        else:
            deferred = result_json
    _observe(job.queue, time.monotonic() - started)
    return deferred


@functools.cache
def _signature(func):
    return inspect.signature(func)


def _observe(queue, seconds):
    estimate = _durations.get(queue)
    _durations[queue] = seconds if estimate is None else estimate + DURATION_WEIGHT * (seconds - estimate)


def batch_size(queue):
    """Return how many jobs of `queue` to claim at once: about BATCH_SECONDS of work.

    A queue this process has not run yet gets batches of one, so that the first slow
    job cannot hold others back.
    """
    estimate = _durations.get(queue)
    if estimate is None:
        return 1
    return max(1, min(MAX_BATCH, int(BATCH_SECONDS / max(estimate, 1e-6))))


def wake(queue):
    """Claim and run due jobs of `queue` until none is left; return how many ran."""
    if settings.DATABASE_IS_SQLITE:
        return _wake_one_at_a_time(queue)
    return _wake_in_batches(queue)


def _claim_seconds(queue):
    # Django-Q2 allows a wake-up the job timeout plus the claim window (see settings),
    # so only jobs started within the window are sure of their full timeout.
    return services.queue_config(queue).get("claim_window", 0)


def _wake_one_at_a_time(queue):
    started = time.monotonic()
    claim_seconds = _claim_seconds(queue)
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


def _wake_in_batches(queue):
    started = time.monotonic()
    claim_seconds = _claim_seconds(queue)
    ran = 0
    finished = []
    try:
        batch = deque(services.claim_batch(queue, limit=batch_size(queue)))
        while batch:
            job = batch.popleft()
            job_started = timezone.now()
            result_json = run_job(job, store_result=False)
            if result_json is not None:
                finished.append(services.FinishedJob(job, result_json, job_started, timezone.now()))
            ran += 1

            if ran >= MAX_JOBS_PER_WAKEUP or time.monotonic() - started >= claim_seconds:
                # Store what ran, hand back the rest, and leave them and any backlog to a
                # fresh wake-up, which any worker may take.
                services.claim_batch(queue, finished=finished, unstarted=list(batch), limit=0)
                wakeups.push(queue)
                return ran
            if not batch:
                batch.extend(services.claim_batch(queue, finished=finished, limit=batch_size(queue)))
                finished = []
    except DatabaseError:
        # The dispatcher hands back or retries this wake-up's jobs once their lease
        # expires, and it resends wake-ups for waiting jobs, so giving up is safe.
        logger.warning("claiming or storing jobs of queue %s failed", queue, exc_info=True)
        close_old_connections()
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
