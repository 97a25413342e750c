"""Reads for the periodic summary jobs: batch bounds and notification candidates."""

from datetime import date

from django.db import connection

from accounts.models import User
from meals.models import Meal
from summaries.models import DailySummary, Goal
from summaries.sql import table, values_cte

# Goal reminder rule: by the 18:00 check a user is "far under" the goal when the day's
# calories so far are below half of the goal's calories.
REMINDER_UNDER_RATIO = "0.5"


def user_batch_upper_bound(*, after_user_id, size):
    """Return the largest user id of the next `size` users after `after_user_id`.

    Return None when at most `size` users remain, so the batch is the last one.
    """
    ids = list(User.objects.filter(pk__gt=after_user_id).order_by("pk").values_list("pk", flat=True)[size - 1:size + 1])
    return ids[0] if len(ids) == 2 else None


def _range_condition(column, after_user_id, up_to_user_id):
    if up_to_user_id is None:
        return f"{column} > %s", [after_user_id]
    return f"{column} > %s AND {column} <= %s", [after_user_id, up_to_user_id]


def goal_reminder_candidates(*, todays, after_user_id, up_to_user_id):
    """Return (user_id, local_date, goal_id) of users in the range who need a goal reminder.

    `todays` is (time_zone, today) for the zones whose check hour has come. A user needs
    a reminder when no meal is logged today, or when an active goal exists and today's
    calories are below REMINDER_UNDER_RATIO of it. Users who turned reminders off, or
    whose account is inactive, are left out.
    """
    if not todays:
        return []
    zones_sql, zones_params = values_cte("zones", ("time_zone", "today"), todays)
    range_sql, range_params = _range_condition("u.id", after_user_id, up_to_user_id)
    sql = (
        f"WITH {zones_sql} "
        f"SELECT u.id, z.today, g.id FROM {table(User)} u "
        f"JOIN zones z ON z.time_zone = u.time_zone "
        f"LEFT JOIN {table(Meal)} m ON m.owner_id = u.id AND m.local_date = z.today "
        f"LEFT JOIN {table(Goal)} g ON g.user_id = u.id AND g.is_active "
        f"WHERE {range_sql} AND u.is_active = TRUE AND u.notify_goal_reminders = TRUE "
        f"GROUP BY u.id, z.today, g.id, g.calories "
        f"HAVING COUNT(m.id) = 0 "
        f"OR (g.id IS NOT NULL AND COALESCE(SUM(m.calories), 0) < g.calories * {REMINDER_UNDER_RATIO}) "
        f"ORDER BY u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*zones_params, *range_params])
        return [(user_id, _as_date(day), goal_id) for user_id, day, goal_id in cursor.fetchall()]


def weekly_report_candidates(*, weeks, after_user_id, up_to_user_id):
    """Return (user_id, week_start, goal_id) of users in the range who get a weekly report.

    `weeks` is (time_zone, week_start, last_day) for the zones whose report hour has
    come; a user gets a report when a summary with meals exists in that span.
    """
    if not weeks:
        return []
    zones_sql, zones_params = values_cte("zones", ("time_zone", "week_start", "last_day"), weeks)
    range_sql, range_params = _range_condition("u.id", after_user_id, up_to_user_id)
    sql = (
        f"WITH {zones_sql} "
        f"SELECT u.id, z.week_start, g.id FROM {table(User)} u "
        f"JOIN zones z ON z.time_zone = u.time_zone "
        f"LEFT JOIN {table(Goal)} g ON g.user_id = u.id AND g.is_active "
        f"WHERE {range_sql} AND u.is_active = TRUE AND u.notify_weekly_reports = TRUE "
        f"AND EXISTS (SELECT 1 FROM {table(DailySummary)} s WHERE s.user_id = u.id "
        f"AND s.local_date >= z.week_start AND s.local_date <= z.last_day AND s.meal_count > 0) "
        f"ORDER BY u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*zones_params, *range_params])
        return [(user_id, _as_date(day), goal_id) for user_id, day, goal_id in cursor.fetchall()]


def _as_date(value):
    # SQLite returns dates from a VALUES list as text.
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value
