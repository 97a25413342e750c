"""Hand-written SQL for the set-based summary work, valid on PostgreSQL and SQLite.

The ORM cannot express an INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE, and
building model objects in Python made the batched nightly run about five times slower
than that one statement. Both backends support every construct used here: a VALUES
CTE, upsert and RETURNING (SQLite 3.35 or newer).

On PostgreSQL the nightly batch statements can also enqueue their goal alerts
themselves (see `alerts_at`): the upsert becomes a data-modifying CTE, and the alert
jobs are inserted from its returned rows in the same statement. SQLite has no
data-modifying CTEs, so there the caller enqueues the alerts from the returned rows.
"""

from django.db import connection

from accounts.models import User
from meals.models import Meal
from notifications.services import notifications_insert_sql
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
# A goal alert goes out for a summary with one of these statuses that has meals (a day
# without meals is the goal reminder's business) and is not stale.
ALERT_STATUSES = (GoalStatus.BELOW, GoalStatus.ABOVE)


def table(model):
    return connection.ops.quote_name(model._meta.db_table)


def values_cte(name, columns, rows):
    """Return ('name (c1, c2) AS (VALUES (%s, %s), ...)', flat params) for `rows`."""
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = f"{name} ({', '.join(columns)}) AS (VALUES {', '.join([placeholders] * len(rows))})"
    return sql, [value for row in rows for value in row]


def zones_cte(columns, rows):
    """Return ('zones (c1, ...) AS (...)', params) for `rows`; `columns` are (name, SQL type).

    On PostgreSQL the rows travel as one array per column. A VALUES list of every time
    zone has over a thousand placeholders, and psycopg 3.3 spent about 7 ms per statement
    rewriting them on the client (599 zones).
    """
    names = [name for name, _ in columns]
    if connection.vendor != "postgresql":
        return values_cte("zones", names, rows)
    arrays = ", ".join(f"%s::{sql_type}[]" for _, sql_type in columns)
    params = [[row[index] for row in rows] for index in range(len(columns))]
    return f"zones ({', '.join(names)}) AS (SELECT * FROM unnest({arrays}))", params


def _in_list(values):
    return "(" + ", ".join(["%s"] * len(values)) + ")", list(values)


def _select_aggregates(meal_alias, user_expr, date_expr, revision_expr):
    """Return the SELECT list that builds one summary row from grouped meals."""
    nutrients = ", ".join(f"COALESCE(ROUND(SUM({meal_alias}.{n}), 2), 0)" for n in NUTRIENTS)
    status = _goal_status(f"COALESCE(SUM({meal_alias}.calories), 0)")
    return (
        f"{user_expr}, {date_expr}, COUNT({meal_alias}.id), {nutrients}, "
        f"g.id, g.calories, g.protein, g.carbs, g.fat, {status}, "
        f"{revision_expr}, FALSE, %s"
    )


def _goal_status(calories):
    """Return the CASE that compares the `calories` expression with the goal `g`."""
    return (
        f"CASE WHEN g.id IS NULL THEN '{GoalStatus.NO_GOAL}' "
        f"WHEN {calories} < g.calories * {GOAL_LOW_RATIO} THEN '{GoalStatus.BELOW}' "
        f"WHEN {calories} > g.calories * {GOAL_HIGH_RATIO} THEN '{GoalStatus.ABOVE}' "
        f"ELSE '{GoalStatus.WITHIN}' END"
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


def _user_range(columns, after_user_id, up_to_user_id):
    """Return SQL that bounds each of `columns` to the batch's user ids, and its params.

    The planner does not carry a range across a join condition, so the users table
    needs its own bounds, or PostgreSQL reads all of it for every batch.
    """
    conditions, params = [], []
    for column in columns:
        conditions.append(f"{column} > %s")
        params.append(after_user_id)
        if up_to_user_id is not None:
            conditions.append(f"{column} <= %s")
            params.append(up_to_user_id)
    return " AND ".join(conditions), params


GOAL_JOIN = "LEFT JOIN {goal} g ON g.user_id = {user} AND g.is_active"


def ended_days_upsert(*, windows, dates, after_user_id, up_to_user_id, computed_at, alerts_at=None):
    """Summarise every (user, date) of the user id range whose day ended in its window.

    `windows` is (time_zone, first_date, today) per zone. Pairs that already have a
    summary that is not stale are skipped, so a run after a finished one writes nothing.
    With `alerts_at` (PostgreSQL only) the statement also enqueues the goal alerts, see
    with_goal_alerts().
    """
    zones_sql, zones_params = zones_cte(
        (("time_zone", "text"), ("first_date", "date"), ("today", "date")), windows
    )
    dates_sql, dates_params = _in_list(dates)
    meal_range_sql, meal_range_params = _user_range(("m.owner_id",), after_user_id, up_to_user_id)
    user_range_sql, user_range_params = _user_range(("u.id",), after_user_id, up_to_user_id)
    nutrients = ", ".join(f"COALESCE(ROUND(SUM(m.{n}), 2), 0) AS {n}" for n in NUTRIENTS)
    # Meals are totalled per (user, date) first, so the joins below run once per
    # summary row instead of once per meal. Pairs with an up-to-date summary are left
    # out before totalling, so an hourly run with nothing to do totals nothing.
    totals = (
        f"SELECT m.owner_id, m.local_date, COUNT(m.id) AS meal_count, {nutrients}, "
        f"COALESCE(SUM(m.calories), 0) AS calories_sum "
        f"FROM {table(Meal)} m "
        # The IN list lets PostgreSQL descend the (local_date, owner) index once per date
        # with the owner range as a bound, instead of scanning whole dates per batch.
        f"WHERE m.local_date IN {dates_sql} AND {meal_range_sql} "
        f"AND NOT EXISTS (SELECT 1 FROM {table(DailySummary)} done WHERE done.user_id = m.owner_id "
        f"AND done.local_date = m.local_date AND done.needs_recompute = FALSE) "
        f"GROUP BY m.owner_id, m.local_date"
    )
    upsert = (
        f"{_insert_head()} "
        f"SELECT t.owner_id, t.local_date, t.meal_count, {', '.join(f't.{n}' for n in NUTRIENTS)}, "
        f"g.id, g.calories, g.protein, g.carbs, g.fat, {_goal_status('t.calories_sum')}, "
        f"COALESCE(s.revision, 0), FALSE, %s "
        f"FROM ({totals}) t "
        f"JOIN {table(User)} u ON u.id = t.owner_id "
        f"JOIN zones z ON z.time_zone = u.time_zone "
        f"LEFT JOIN {table(DailySummary)} s ON s.user_id = t.owner_id AND s.local_date = t.local_date "
        f"{GOAL_JOIN.format(goal=table(Goal), user='t.owner_id')} "
        f"WHERE {user_range_sql} "
        f"AND t.local_date >= z.first_date AND t.local_date < z.today "
        f"AND u.is_active = TRUE "
        f"{_upsert_tail()}"
    )
    upsert_params = [computed_at, *dates_params, *meal_range_params, *user_range_params]
    return _statement(zones_sql, zones_params, upsert, upsert_params, alerts_at)


def stale_upsert(*, todays, after_user_id, up_to_user_id, computed_at, alerts_at=None):
    """Recompute the stale summaries of the user id range whose day has ended.

    `todays` is (time_zone, today) per zone. Reading from the summary side also covers
    dates outside the look-back window and dates whose meals were all moved or deleted.
    `alerts_at` works as in ended_days_upsert().
    """
    zones_sql, zones_params = zones_cte((("time_zone", "text"), ("today", "date")), todays)
    range_sql, range_params = _user_range(("s.user_id", "u.id"), after_user_id, up_to_user_id)
    upsert = (
        f"{_insert_head()} "
        f"SELECT {_select_aggregates('m', 's.user_id', 's.local_date', 's.revision')} "
        f"FROM {table(DailySummary)} s "
        f"JOIN {table(User)} u ON u.id = s.user_id "
        f"JOIN zones z ON z.time_zone = u.time_zone "
        f"LEFT JOIN {table(Meal)} m ON m.owner_id = s.user_id AND m.local_date = s.local_date "
        f"{GOAL_JOIN.format(goal=table(Goal), user='s.user_id')} "
        f"WHERE s.needs_recompute = TRUE AND s.local_date < z.today "
        f"AND {range_sql} "
        f"GROUP BY s.user_id, s.local_date, s.revision, g.id, g.calories, g.protein, g.carbs, g.fat "
        f"{_upsert_tail()}"
    )
    upsert_params = [computed_at, *range_params]
    return _statement(zones_sql, zones_params, upsert, upsert_params, alerts_at)


def _statement(zones_sql, zones_params, upsert, upsert_params, alerts_at):
    if alerts_at is None:
        return f"WITH {zones_sql} {upsert}", [*zones_params, *upsert_params]
    return with_goal_alerts(zones_sql, zones_params, upsert, upsert_params, alerts_at)


def with_goal_alerts(ctes_sql, ctes_params, upsert, upsert_params, now):
    """Return (sql, params) that runs `upsert` and enqueues its goal alerts (PostgreSQL only).

    The upsert becomes a data-modifying CTE. The statement inserts a goal_alert job for
    each upserted row whose status is in ALERT_STATUSES, that has meals and is not
    stale, and whose user is active and wants goal alerts. The jobs equal those that
    notifications_enqueue_many() would write.
    The statement returns (user_id, local_date, alerts_created) per upserted row, where
    alerts_created is the number of new alert jobs, the same in every row.
    """
    statuses = ", ".join(f"'{status}'" for status in ALERT_STATUSES)
    alert_rows = (
        "SELECT r.user_id, r.local_date, jsonb_build_object('summary_id', r.id, 'goal_id', r.goal_id, "
        "'local_date', to_char(r.local_date, 'YYYY-MM-DD')) AS data "
        f"FROM upserted r JOIN {table(User)} u ON u.id = r.user_id "
        f"WHERE r.goal_status IN ({statuses}) AND r.meal_count > 0 AND NOT r.needs_recompute "
        "AND u.is_active AND u.notify_goal_alerts"
    )
    alerts_sql, alerts_params = notifications_insert_sql(kind="goal_alert", source="alert_rows", now=now)
    sql = (
        f"WITH {ctes_sql}, upserted AS ({upsert}), alert_rows AS ({alert_rows}), alerts AS ({alerts_sql}) "
        "SELECT r.user_id, r.local_date, (SELECT COUNT(*) FROM alerts) FROM upserted r"
    )
    return sql, [*ctes_params, *upsert_params, *alerts_params]


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
