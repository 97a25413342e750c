"""The data-aggregation queue's periodic jobs: nightly summaries, goal reminders, weekly reports.

Each runs hourly from nutricoach/periodic.py and gets `scheduled_for`, the UTC tick it
was fired for. Every batch covers services.BATCH_USERS users (SUMMARY_BATCH_USERS for
the nightly summaries) and, when users remain, enqueues the same task with a cursor
(`after_user_id`) and the same tick, so a chain of follow-ups computes the dates of the
original tick however long it takes.
"""

import logging

from django.utils import timezone

from nutricoach.jobs.errors import TerminalError
from nutricoach.jobs.registry import job_task
from nutricoach.jobs.services import enqueue
from summaries import localtime, services

logger = logging.getLogger(__name__)

QUEUE = "data-aggregation"
SUMMARISE_ENDED_DAYS = "summaries.summarise_ended_days"
CHECK_USER_GOALS = "summaries.check_user_goals"
SEND_WEEKLY_REPORTS = "summaries.send_weekly_reports"


def _check_cursor(after_user_id):
    if isinstance(after_user_id, bool) or not isinstance(after_user_id, int) or after_user_id < 0:
        raise TerminalError(f"after_user_id {after_user_id!r} is not a user id; send 0 or a positive integer.")


def _tick(scheduled_for):
    """Return the tick as an aware datetime and as the ISO string follow-ups carry."""
    if scheduled_for is None:
        now = timezone.now()
        return now, now.isoformat()
    try:
        return localtime.as_aware_utc(scheduled_for), scheduled_for
    except ValueError as exc:
        raise TerminalError(str(exc)) from None


def _continue(ctx, task, tick, result):
    """Enqueue the next batch of `task` for the same tick when users remain; return its id."""
    if result.next_after_user_id is None:
        ctx.progress(100, f"last batch done: {result.as_dict()}")
        return None
    follow_up = enqueue(
        task,
        {"scheduled_for": tick, "after_user_id": result.next_after_user_id},
        queue=QUEUE,
        idempotency_key=f"{task}@{tick}>{result.next_after_user_id}",
    ).job
    ctx.progress(100, f"batch done: {result.as_dict()}; users after {result.next_after_user_id} continue in job {follow_up.id}")
    return str(follow_up.id)


@job_task(SUMMARISE_ENDED_DAYS, queue=QUEUE, attempts=5)
def summarise_ended_days(ctx, scheduled_for=None, after_user_id=0):
    """Summarise the local dates that ended within the look-back window, one user batch at a time."""
    _check_cursor(after_user_id)
    now, tick = _tick(scheduled_for)
    result = services.summaries_summarise_ended_days(now=now, after_user_id=after_user_id)
    return {**result.as_dict(), "follow_up": _continue(ctx, SUMMARISE_ENDED_DAYS, tick, result)}


@job_task(CHECK_USER_GOALS, queue=QUEUE, attempts=5)
def check_user_goals(ctx, scheduled_for=None, after_user_id=0):
    """Send goal reminders to users past 18:00 local who logged nothing or are far under their goal."""
    _check_cursor(after_user_id)
    now, tick = _tick(scheduled_for)
    result = services.goal_reminders_enqueue(now=now, after_user_id=after_user_id)
    return {**result.as_dict(), "follow_up": _continue(ctx, CHECK_USER_GOALS, tick, result)}


@job_task(SEND_WEEKLY_REPORTS, queue=QUEUE, attempts=5)
def send_weekly_reports(ctx, scheduled_for=None, after_user_id=0):
    """Send the weekly report to users whose local time is Sunday 09:00 or later."""
    _check_cursor(after_user_id)
    now, tick = _tick(scheduled_for)
    result = services.weekly_reports_enqueue(now=now, after_user_id=after_user_id)
    return {**result.as_dict(), "follow_up": _continue(ctx, SEND_WEEKLY_REPORTS, tick, result)}
