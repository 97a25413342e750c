"""Hand-written SQL for the set-based summary work, valid on PostgreSQL and SQLite.

The ORM cannot express an INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE, and
building model objects in Python made the batched nightly run about five times slower
than that one statement. Both backends support every construct used here: a VALUES
CTE, upsert and RETURNING (SQLite 3.35 or newer).
"""

from django.db import connection

from accounts.models import User
from meals.models import Meal
from nutricoach.nutrients import NUTRIENTS
from summaries.models import DailySummary, Goal, GoalStatus

# Goal deviation: a day below 80 % or above 120 % of the goal's calories is a deviation.
GOAL_LOW_RATIO = "0.8"
GOAL_HIGH_RATIO = "1.2"

SUMMARY_COLUMNS = (
    "user_id", "local_date", "meal_count", *NUTRIENTS,
    "goal_id", "goal_calories", "goal_protein", "goal_carbs", "goal_fat", "goal_status",
    "revision", "needs_recompute", "computed_at",
)
# Every column a run recomputes. `revision` is left alone: a meal change during the run
# may have raised it, and then the row must stay stale.
UPDATED_COLUMNS = tuple(
    column for column in SUMMARY_COLUMNS if column not in ("user_id", "local_date", "revision", "needs_recompute")
)
RETURNED_COLUMNS = ("id", "user_id", "local_date", "meal_count", "goal_id", "goal_status", "needs_recompute")


def table(model):
    return connection.ops.quote_name(model._meta.db_table)


def values_cte(name, columns, rows):
    """Return ('name (c1, c2) AS (VALUES (%s, %s), ...)', flat params) for `rows`."""
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = f"{name} ({', '.join(columns)}) AS (VALUES {', '.join([placeholders] * len(rows))})"
    return sql, [value for row in rows for value in row]


def _in_list(values):
    return "(" + ", ".join(["%s"] * len(values)) + ")", list(values)


def _select_aggregates(meal_alias, user_expr, date_expr, revision_expr):
    """Return the SELECT list that builds one summary row from grouped meals."""
    calories = f"COALESCE(SUM({meal_alias}.calories), 0)"
    nutrients = ", ".join(f"COALESCE(ROUND(SUM({meal_alias}.{n}), 2), 0)" for n in NUTRIENTS)
    status = (
        f"CASE WHEN g.id IS NULL THEN '{GoalStatus.NO_GOAL}' "
        f"WHEN {calories} < g.calories * {GOAL_LOW_RATIO} THEN '{GoalStatus.BELOW}' "
        f"WHEN {calories} > g.calories * {GOAL_HIGH_RATIO} THEN '{GoalStatus.ABOVE}' "
        f"ELSE '{GoalStatus.WITHIN}' END"
    )
    return (
        f"{user_expr}, {date_expr}, COUNT({meal_alias}.id), {nutrients}, "
        f"g.id, g.calories, g.protein, g.carbs, g.fat, {status}, "
        f"{revision_expr}, FALSE, %s"
    )


def _upsert_tail():
    summary = table(DailySummary)
    updates = ", ".join(f"{column} = excluded.{column}" for column in UPDATED_COLUMNS)
    return (
        f"ON CONFLICT (user_id, local_date) DO UPDATE SET {updates}, "
        f"needs_recompute = ({summary}.revision <> excluded.revision) "
        f"RETURNING {', '.join(RETURNED_COLUMNS)}"
    )


def _insert_head():
    return f"INSERT INTO {table(DailySummary)} ({', '.join(SUMMARY_COLUMNS)})"


GOAL_JOIN = "LEFT JOIN {goal} g ON g.user_id = {user} AND g.is_active"


def ended_days_upsert(*, windows, dates, after_user_id, up_to_user_id, computed_at):
    """Summarise every (user, date) of the user id range whose day ended in its window.

    `windows` is (time_zone, first_date, today) per zone. Pairs that already have a
    summary that is not stale are skipped, so a run after a finished one writes nothing.
    """
    zones_sql, zones_params = values_cte("zones", ("time_zone", "first_date", "today"), windows)
    dates_sql, dates_params = _in_list(dates)
    upper_sql, upper_params = ("AND m.owner_id <= %s", [up_to_user_id]) if up_to_user_id is not None else ("", [])
    sql = (
        f"WITH {zones_sql} {_insert_head()} "
        f"SELECT {_select_aggregates('m', 'm.owner_id', 'm.local_date', 'COALESCE(s.revision, 0)')} "
        f"FROM {table(Meal)} m "
        f"JOIN {table(User)} u ON u.id = m.owner_id "
        f"JOIN zones z ON z.time_zone = u.time_zone "
        f"LEFT JOIN {table(DailySummary)} s ON s.user_id = m.owner_id AND s.local_date = m.local_date "
        f"{GOAL_JOIN.format(goal=table(Goal), user='m.owner_id')} "
        # The IN list lets PostgreSQL descend the (local_date, owner) index once per date
        # with the owner range as a bound, instead of scanning whole dates per batch.
        f"WHERE m.local_date IN {dates_sql} "
        f"AND m.owner_id > %s {upper_sql} "
        f"AND m.local_date >= z.first_date AND m.local_date < z.today "
        f"AND u.is_active = TRUE AND (s.id IS NULL OR s.needs_recompute = TRUE) "
        f"GROUP BY m.owner_id, m.local_date, s.revision, g.id, g.calories, g.protein, g.carbs, g.fat "
        f"{_upsert_tail()}"
    )
    params = [*zones_params, computed_at, *dates_params, after_user_id, *upper_params]
    return sql, params


def stale_upsert(*, todays, after_user_id, up_to_user_id, computed_at):
    """Recompute the stale summaries of the user id range whose day has ended.

    `todays` is (time_zone, today) per zone. Reading from the summary side also covers
    dates outside the look-back window and dates whose meals were all moved or deleted.
    """
    zones_sql, zones_params = values_cte("zones", ("time_zone", "today"), todays)
    upper_sql, upper_params = ("AND s.user_id <= %s", [up_to_user_id]) if up_to_user_id is not None else ("", [])
    sql = (
        f"WITH {zones_sql} {_insert_head()} "
        f"SELECT {_select_aggregates('m', 's.user_id', 's.local_date', 's.revision')} "
        f"FROM {table(DailySummary)} s "
        f"JOIN {table(User)} u ON u.id = s.user_id "
        f"JOIN zones z ON z.time_zone = u.time_zone "
        f"LEFT JOIN {table(Meal)} m ON m.owner_id = s.user_id AND m.local_date = s.local_date "
        f"{GOAL_JOIN.format(goal=table(Goal), user='s.user_id')} "
        f"WHERE s.needs_recompute = TRUE AND s.local_date < z.today "
        f"AND s.user_id > %s {upper_sql} "
        f"GROUP BY s.user_id, s.local_date, s.revision, g.id, g.calories, g.protein, g.carbs, g.fat "
        f"{_upsert_tail()}"
    )
    params = [*zones_params, computed_at, after_user_id, *upper_params]
    return sql, params


def one_day_upsert(*, user_id, local_date, computed_at):
    """Summarise one user's date, writing a row even when the date has no meals."""
    sql = (
        f"{_insert_head()} "
        f"SELECT {_select_aggregates('m', 'u.id', '%s', 'COALESCE(s.revision, 0)')} "
        f"FROM {table(User)} u "
        f"LEFT JOIN {table(Meal)} m ON m.owner_id = u.id AND m.local_date = %s "
        f"LEFT JOIN {table(DailySummary)} s ON s.user_id = u.id AND s.local_date = %s "
        f"{GOAL_JOIN.format(goal=table(Goal), user='u.id')} "
        f"WHERE u.id = %s "
        f"GROUP BY u.id, s.revision, g.id, g.calories, g.protein, g.carbs, g.fat "
        f"{_upsert_tail()}"
    )
    return sql, [local_date, computed_at, local_date, local_date, user_id]


def stale_mark_upsert(pairs):
    """Return SQL that marks the (user_id, local_date) summaries stale, creating missing rows."""
    rows_sql = ", ".join(["(%s, %s, 0, 0, 0, 0, 0, 0, %s, 1, TRUE)"] * len(pairs))
    summary = table(DailySummary)
    sql = (
        f"INSERT INTO {summary} (user_id, local_date, meal_count, {', '.join(NUTRIENTS)}, goal_status, "
        f"revision, needs_recompute) VALUES {rows_sql} "
        f"ON CONFLICT (user_id, local_date) DO UPDATE SET needs_recompute = TRUE, "
        f"revision = {summary}.revision + 1"
    )
    params = [value for user_id, local_date in pairs for value in (user_id, local_date, GoalStatus.NO_GOAL.value)]
    return sql, params


def stale_mark_update(pairs):
    """Return SQL that marks existing (user_id, local_date) summaries stale and creates none."""
    summary = table(DailySummary)
    condition = " OR ".join(["(user_id = %s AND local_date = %s)"] * len(pairs))
    sql = f"UPDATE {summary} SET needs_recompute = TRUE, revision = revision + 1 WHERE {condition}"
    return sql, [value for pair in pairs for value in pair]
