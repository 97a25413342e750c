"""Jobs the job runtime runs on itself."""

from nutricoach.jobs import retention
from nutricoach.jobs.registry import job_task


@job_task("jobs.prune_history", queue="maintenance", attempts=3)
def prune_history(ctx, scheduled_for=None):
    """Delete finished jobs and Django-Q2 task rows past their retention."""
    removed = retention.prune(log=ctx.log)
    ctx.progress(100)
    return removed
