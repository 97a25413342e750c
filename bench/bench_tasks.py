"""No-op tasks for the job benchmarks, loaded by workers through JOB_EXTRA_TASK_MODULES."""

from nutricoach.jobs.registry import job_task


@job_task("bench.noop", queue="maintenance", attempts=1)
def noop(ctx, **payload):
    return None


def bare_noop():
    """Do nothing, as a plain Django-Q2 task for the bare-Q2 baseline."""
    return None
