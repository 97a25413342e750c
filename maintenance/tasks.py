"""Nightly maintenance jobs: each runs one bounded pass under its lock and chains a follow-up.

The periodic declarations are in nutricoach/periodic.py; the same work is available to
operators as management commands (see maintenance/management/commands/).
"""

from django.core.exceptions import ImproperlyConfigured

from maintenance import services, tempfiles
from maintenance.runs import MaintenanceTask, run_as_job
from nutricoach.jobs.errors import TerminalError
from nutricoach.jobs.registry import job_task

CLEAR_SESSIONS = MaintenanceTask("maintenance.clear_expired_sessions", services.sessions_clear_expired)
CLEAN_TEMP_FILES = MaintenanceTask(
    "maintenance.clean_temp_files",
    lambda *, dry_run, heartbeat: tempfiles.temp_files_clean(dry_run=dry_run),
)
ARCHIVE_MEALS = MaintenanceTask("maintenance.archive_old_meals", services.meals_archive_old)
PRUNE_JOB_HISTORY = MaintenanceTask("maintenance.prune_job_history", services.job_history_prune)


def _run(ctx, task, follow_up):
    try:
        return run_as_job(ctx, task, follow_up=follow_up)
    except (ImproperlyConfigured, tempfiles.TempFolderError) as exc:
        raise TerminalError(str(exc)) from exc


@job_task(CLEAR_SESSIONS.name, queue="maintenance", attempts=3)
def clear_expired_sessions(ctx, scheduled_for=None, follow_up=0):
    """Remove expired sessions from the configured session store."""
    return _run(ctx, CLEAR_SESSIONS, follow_up)


@job_task(CLEAN_TEMP_FILES.name, queue="maintenance", attempts=3)
def clean_temp_files(ctx, scheduled_for=None, follow_up=0):
    """Remove old regular files from the temporary folder."""
    return _run(ctx, CLEAN_TEMP_FILES, follow_up)


@job_task(ARCHIVE_MEALS.name, queue="maintenance", attempts=3)
def archive_old_meals(ctx, scheduled_for=None, follow_up=0):
    """Archive meals older than the configured age."""
    return _run(ctx, ARCHIVE_MEALS, follow_up)


@job_task(PRUNE_JOB_HISTORY.name, queue="maintenance", attempts=3)
def prune_job_history(ctx, scheduled_for=None, follow_up=0):
    """Delete finished jobs and Django-Q2 task rows past their retention."""
    return _run(ctx, PRUNE_JOB_HISTORY, follow_up)
