"""Job handlers used by the job runtime's tests, in-process and in real clusters.

Worker processes import this module through JOB_EXTRA_TASK_MODULES. Handlers leave
marker files in the directory given in their payload so tests can see what ran where.
"""

import os
import signal
import time
from pathlib import Path

from nutricoach.jobs.backoff import Backoff
from nutricoach.jobs.errors import RateLimitedError, RetryableError, TerminalError
from nutricoach.jobs.registry import job_task

dead_letters = []


def _mark(directory, name, text=""):
    path = Path(directory) / name
    with open(path, "a") as handle:
        handle.write(text + "\n")


@job_task("tests.noop", queue="maintenance", attempts=3, backoff=Backoff.fixed(0))
def noop(ctx, **payload):
    return {"ok": True}


@job_task("tests.record", queue="maintenance", attempts=3, backoff=Backoff.fixed(0.2))
def record(ctx, directory, label="", sleep=0.0):
    """Log start and end of each run to files, sleeping in between."""
    job_id = str(ctx.job.id)
    _mark(directory, f"start-{job_id}", f"{ctx.attempt} {os.getpid()} {time.time()}")
    _mark(directory, "starts.log", f"{job_id} {label} {time.time()}")
    ctx.progress(50, "sleeping")
    time.sleep(sleep)
    _mark(directory, f"done-{job_id}", f"{ctx.attempt} {os.getpid()} {time.time()}")
    _mark(directory, "ends.log", f"{job_id} {label} {time.time()}")
    return {"label": label}


@job_task("tests.kill_worker", queue="maintenance", attempts=2, backoff=Backoff.fixed(0))
def kill_worker(ctx, directory):
    """Kill the worker process running it, every time: a job that takes its worker down."""
    _mark(directory, f"start-{ctx.job.id}", f"{ctx.attempt} {os.getpid()} {time.time()}")
    os.kill(os.getpid(), signal.SIGKILL)


@job_task("tests.limited", queue="meal-processing", attempts=1)
def limited(ctx, directory):
    _mark(directory, "limited-starts.log", f"{ctx.job.id} {time.time()}")
    return None


@job_task("tests.flaky", queue="maintenance", attempts=5, backoff=Backoff.exponential_jitter(1.0, jitter=1.0, cap=30))
def flaky(ctx, fail_times, retry_after=None, terminal=False):
    if terminal:
        raise TerminalError("the input can never be processed")
    if ctx.attempt <= fail_times:
        raise RetryableError(f"transient failure on attempt {ctx.attempt}", retry_after=retry_after)
    return {"attempt": ctx.attempt}


@job_task("tests.crash", queue="maintenance", attempts=2, backoff=Backoff.fixed(0))
def crash(ctx):
    raise ZeroDivisionError("division by zero in the handler")


def _remember_dead_letter(job, error):
    dead_letters.append((str(job.id), error))


@job_task("tests.doomed", queue="maintenance", attempts=1, on_dead_letter=_remember_dead_letter)
def doomed(ctx):
    raise TerminalError("doomed from the start")


@job_task("tests.bad_result", queue="maintenance", attempts=3)
def bad_result(ctx):
    return {"when": object()}


@job_task("tests.throttled", queue="maintenance", attempts=2, backoff=Backoff.fixed(0))
def throttled(ctx, limited_times):
    previous = ctx.job.attempts.filter(outcome="rate_limited").count()
    if previous < limited_times:
        raise RateLimitedError("upstream answered 429", retry_after=0)
    return {"attempt": ctx.attempt}


@job_task("tests.nan_result", queue="maintenance", attempts=3)
def nan_result(ctx):
    return {"ratio": float("nan")}
