"""Writes on goals and daily summaries, and the batches of the periodic summary jobs.

Daily work runs per local date. The hourly jobs pass `now` (the scheduler tick) down to
every function here, so a retried or replayed tick computes the same dates, and tests
can drive the clock hour by hour.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from notifications.services import notifications_enqueue_many, notifications_wake_on_commit
from summaries import localtime, selectors, sql
from summaries.models import DailySummary, Goal

logger = logging.getLogger(__name__)


@transaction.atomic
def goal_create(*, user, calories, protein, carbs, fat, activate=True):
    """Create a goal, making it the active one unless activate is False."""
    goal = Goal.objects.create(user=user, calories=calories, protein=protein, carbs=carbs, fat=fat)
    if activate:
        goal = goal_activate(goal=goal)
    return goal


@transaction.atomic
def goal_activate(*, goal):
    """Make goal the user's only active goal."""
    # Lock the user's goals so two concurrent activations cannot both succeed.
    list(Goal.objects.select_for_update().filter(user_id=goal.user_id))
    Goal.objects.filter(user_id=goal.user_id, is_active=True).exclude(pk=goal.pk).update(is_active=False)
    goal.is_active = True
    goal.activated_at = timezone.now()
    goal.save(update_fields=["is_active", "activated_at"])
    return goal


# Days whose local end lies this far back are still summarised when they have no
# up-to-date summary, so a scheduler outage shorter than this loses no date.
LOOKBACK = timedelta(hours=48)
# Users per batch of the goal reminder and weekly report jobs. When users remain, the
# next batch runs in a follow-up job, so one job stays well inside the queue timeout at
# any user count.
BATCH_USERS = 5000
# Users per batch of the nightly summary job, which follows up in the same way. A batch
# keeps one (user, date) pair per summary in Python, and on PostgreSQL nothing else.
# In bench/summaries_nightly.py (100,000 users, PostgreSQL 15) the run took 2.9 s in
# batches of 20,000 and 3.1 s in batches of 5,000, with 4.5 MiB against 1.3 MiB of peak
# Python memory. Meal changes of a batch's users wait for its commit, which came after
# about 0.6 s there (2.9 s over 5 batches).
SUMMARY_BATCH_USERS = 20_000
# Deviating goal statuses, as set by summaries.sql (below 80 % or above 120 % of calories).
ALERT_STATUSES = sql.ALERT_STATUSES
# The goal reminder runs from this local hour until the local day ends.
REMINDER_HOUR = 18
# The weekly report runs on this local weekday (Monday is 0) from this local hour.
WEEKLY_REPORT_WEEKDAY = 6
WEEKLY_REPORT_HOUR = 9
# Pairs per statement when marking summaries stale, to bound the statement size.
STALE_MARK_CHUNK = 500


class SummaryInputError(ValueError):
    """A summary request names an invalid user or date; nothing was written."""


@dataclass
class BatchResult:
    """The outcome of one batch of a periodic job; `next_after_user_id` is None after the last."""

    after_user_id: int
    up_to_user_id: int | None
    summarised: list = field(default_factory=list)
    recomputed: list = field(default_factory=list)
    notified: int = 0
    duration_ms: int = 0

    @property
    def next_after_user_id(self):
        return self.up_to_user_id

    def as_dict(self):
        return {
            "after_user_id": self.after_user_id,
            "up_to_user_id": self.up_to_user_id,
            "summarised": len(self.summarised),
            "recomputed": len(self.recomputed),
            "notified": self.notified,
            "duration_ms": self.duration_ms,
        }


def _fetch_returned(statement, params):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = [dict(zip(sql.RETURNED_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["local_date"] = _as_date(row["local_date"])
    return rows


def _fetch_pairs_and_alerts(statement, params):
    """Run a with_goal_alerts() statement and return its (user_id, local_date) pairs and new alert count."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [(user_id, local_date) for user_id, local_date, _ in rows], (rows[0][2] if rows else 0)


def _enqueue_goal_alerts(rows):
    """Enqueue a goal_alert for each row that deviates from its goal; return how many.

    Only rows with meals count: a day without meals is the goal reminder's business.
    Callers pass rows of days that are over.
    """
    deviating = [
        row for row in rows
        if row["goal_status"] in ALERT_STATUSES and row["meal_count"] > 0 and not row["needs_recompute"]
    ]
    if not deviating:
        return 0
    wanted = set(
        User.objects.filter(pk__in={row["user_id"] for row in deviating}, is_active=True, notify_goal_alerts=True)
        .values_list("pk", flat=True)
    )
    items = [
        (
            row["user_id"],
            row["local_date"].isoformat(),
            {"summary_id": row["id"], "goal_id": row["goal_id"], "local_date": row["local_date"].isoformat()},
        )
        for row in deviating
        if row["user_id"] in wanted
    ]
    return notifications_enqueue_many(kind="goal_alert", items=items)


def summarise(*, user, local_date, now=None):
    """Compute and upsert `user`'s summary of `local_date`; return the DailySummary.

    Running it again gives the same row. A goal alert is enqueued (once per user and
    date) only when the day is over in the user's time zone at `now`. Raise
    SummaryInputError for a date that is not a datetime.date.
    """
    if not isinstance(local_date, date) or hasattr(local_date, "hour"):
        raise SummaryInputError(f"local_date {local_date!r} is not a date; pass a datetime.date such as 2026-12-04.")
    now = now or timezone.now()

    statement, params = sql.one_day_upsert(user_id=user.pk, local_date=local_date, computed_at=timezone.now())
    with transaction.atomic():
        rows = _fetch_returned(statement, params)
        if localtime.day_has_ended(local_date, user.time_zone, now):
            _enqueue_goal_alerts(rows)

    logger.info("summarised user %s on %s: %s", user.pk, local_date, rows[0]["goal_status"])
    return DailySummary.objects.get(pk=rows[0]["id"])


def _as_date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def _window_dates(windows):
    dates = set()
    for _, first_date, today in windows:
        day = first_date
        while day < today:
            dates.add(day)
            day += timedelta(days=1)
    return sorted(dates)


def summaries_summarise_ended_days(*, now, after_user_id=0, batch_size=None):
    """Summarise one batch of users for every local date that ended within LOOKBACK of `now`.

    Covers the users with ids after `after_user_id`, `batch_size` at a time. In one
    transaction it upserts the (user, date) pairs that have meals and no up-to-date
    summary, recomputes the batch's stale summaries of any ended date, and enqueues
    goal alerts. A second call with the same arguments writes nothing new.
    """
    started = time.monotonic()
    up_to_user_id = selectors.user_batch_upper_bound(
        after_user_id=after_user_id, size=batch_size or SUMMARY_BATCH_USERS
    )
    windows = localtime.ended_date_windows(now, LOOKBACK)
    todays = [(time_zone, today) for time_zone, _, today in windows]
    computed_at = timezone.now()
    set_based_alerts = connection.vendor == "postgresql"

    ended_days = sql.ended_days_upsert(
        windows=windows,
        dates=_window_dates(windows),
        after_user_id=after_user_id,
        up_to_user_id=up_to_user_id,
        computed_at=computed_at,
        alerts_at=computed_at if set_based_alerts else None,
    )
    stale = sql.stale_upsert(
        todays=todays,
        after_user_id=after_user_id,
        up_to_user_id=up_to_user_id,
        computed_at=computed_at,
        alerts_at=computed_at if set_based_alerts else None,
    )
    with transaction.atomic():
        if set_based_alerts:
            # PostgreSQL: each statement enqueues its own alerts, so only the (user, date)
            # pairs come back to Python.
            summarised, summarised_alerts = _fetch_pairs_and_alerts(*ended_days)
            recomputed, recomputed_alerts = _fetch_pairs_and_alerts(*stale)
            notified = summarised_alerts + recomputed_alerts
            notifications_wake_on_commit(notified)
        else:
            summarised_rows = _fetch_returned(*ended_days)
            recomputed_rows = _fetch_returned(*stale)
            notified = _enqueue_goal_alerts(summarised_rows + recomputed_rows)
            summarised = [(row["user_id"], row["local_date"]) for row in summarised_rows]
            recomputed = [(row["user_id"], row["local_date"]) for row in recomputed_rows]

    result = BatchResult(
        after_user_id=after_user_id,
        up_to_user_id=up_to_user_id,
        summarised=summarised,
        recomputed=recomputed,
        notified=notified,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    logger.info(
        "ended days at %s for users %s to %s: %d summarised, %d recomputed, %d alerts, %d ms",
        now.isoformat(), after_user_id, up_to_user_id or "end", len(summarised), len(recomputed), notified,
        result.duration_ms,
    )
    return result


def summaries_mark_stale(*, pairs, now=None):
    """Mark the summaries of (user_id, local_date) pairs as needing a recompute.

    Call it after any meal write that bypasses Meal.save() and Meal.delete() (a queryset
    update, a bulk insert): those send no signals. A missing summary is created as a
    stale row only when its day is over, because the nightly run has covered or skipped
    that date; a day in progress is summarised when it ends. Return the number of pairs.
    """
    pairs = sorted({(user_id, _as_date(day)) for user_id, day in pairs})
    if not pairs:
        return 0
    now = now or timezone.now()
    zones = dict(User.objects.filter(pk__in={user_id for user_id, _ in pairs}).values_list("pk", "time_zone"))
    ended, open_days = [], []
    for user_id, day in pairs:
        if user_id not in zones:
            continue
        if localtime.day_has_ended(day, zones[user_id], now):
            ended.append((user_id, day))
        else:
            open_days.append((user_id, day))

    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(ended), STALE_MARK_CHUNK):
            cursor.execute(*sql.stale_mark_upsert(ended[start:start + STALE_MARK_CHUNK]))
        for start in range(0, len(open_days), STALE_MARK_CHUNK):
            cursor.execute(*sql.stale_mark_update(open_days[start:start + STALE_MARK_CHUNK]))
    logger.debug("summaries marked stale: %d ended days, %d days in progress", len(ended), len(open_days))
    return len(pairs)


def goal_reminders_enqueue(*, now, after_user_id=0, batch_size=None):
    """Enqueue goal reminders for one batch of users whose local time is 18:00 or later.

    Catch-up stays within the same local day: a zone is checked at every hourly run from
    REMINDER_HOUR until its midnight, and the notification key (user, date) keeps it to
    one reminder per user and date. See selectors.goal_reminder_candidates for the rule.
    """
    started = time.monotonic()
    todays = [(day.time_zone, day.today) for day in localtime.zone_days(now) if day.hour >= REMINDER_HOUR]
    if not todays:
        return BatchResult(after_user_id=after_user_id, up_to_user_id=None)
    up_to_user_id = selectors.user_batch_upper_bound(after_user_id=after_user_id, size=batch_size or BATCH_USERS)

    candidates = selectors.goal_reminder_candidates(
        todays=todays, after_user_id=after_user_id, up_to_user_id=up_to_user_id
    )
    items = [
        (user_id, day.isoformat(), {"local_date": day.isoformat(), "goal_id": goal_id})
        for user_id, day, goal_id in candidates
    ]
    return _notify_batch(
        kind="goal_reminder", items=items, now=now, started=started,
        after_user_id=after_user_id, up_to_user_id=up_to_user_id,
    )


def weekly_reports_enqueue(*, now, after_user_id=0, batch_size=None):
    """Enqueue weekly reports for one batch of users whose local time is Sunday 09:00 or later.

    The report is for the ISO week that ends on that Sunday, keyed like 2026-W49, so
    catch-up until the local Sunday ends sends it once. Its data contains the week and ids
    only: the renderer reads the per-day summaries itself. Sunday is still in progress,
    so only users with a summary from Monday to Saturday get a report.
    """
    started = time.monotonic()
    weeks = []
    for day in localtime.zone_days(now):
        if day.today.weekday() == WEEKLY_REPORT_WEEKDAY and day.hour >= WEEKLY_REPORT_HOUR:
            monday, _ = localtime.week_bounds(day.today)
            weeks.append((day.time_zone, monday, day.today - timedelta(days=1)))
    if not weeks:
        return BatchResult(after_user_id=after_user_id, up_to_user_id=None)
    up_to_user_id = selectors.user_batch_upper_bound(after_user_id=after_user_id, size=batch_size or BATCH_USERS)

    candidates = selectors.weekly_report_candidates(
        weeks=weeks, after_user_id=after_user_id, up_to_user_id=up_to_user_id
    )
    items = []
    for user_id, monday, goal_id in candidates:
        week = localtime.iso_week_key(monday)
        _, sunday = localtime.week_bounds(monday)
        items.append((user_id, week, {
            "week": week, "week_start": monday.isoformat(), "week_end": sunday.isoformat(), "goal_id": goal_id,
        }))
    return _notify_batch(
        kind="weekly_report", items=items, now=now, started=started,
        after_user_id=after_user_id, up_to_user_id=up_to_user_id,
    )


def _notify_batch(*, kind, items, now, started, after_user_id, up_to_user_id):
    """Enqueue one batch's notifications of `kind` and return its BatchResult."""
    with transaction.atomic():
        notified = notifications_enqueue_many(kind=kind, items=items)

    result = BatchResult(
        after_user_id=after_user_id,
        up_to_user_id=up_to_user_id,
        notified=notified,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    logger.info(
        "%s notifications at %s for users %s to %s: %d requested, %d ms",
        kind, now.isoformat(), after_user_id, up_to_user_id or "end", notified, result.duration_ms,
    )
    return result
