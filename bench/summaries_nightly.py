"""Measure the nightly summary run against one job per user and against a single statement.

Usage:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nc_bench \\
        .venv/bin/python bench/summaries_nightly.py --users 100000

The script creates its own database with Django's test-database machinery (the name in
DATABASE_URL with the prefix test_, so test_nc_bench above), migrates it, fills it, and
drops it at the end; it touches no other database. It loads `--users` users spread over
every IANA time zone, each with three meals on 10 November 2026 and half of them with a
goal, then measures, at 12:05 UTC on 11 November (the 10th has ended everywhere):

(a) the batched nightly run: summaries.summarise_ended_days enqueued once and run
    through the job runtime in this process, follow-up batches included;
(b) the naive design: one job per user that calls summaries.services.summarise for that
    user, on `--naive-users` users (2,000 by default) and extrapolated linearly;
(c) the floor: one hand-written INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE
    that writes the same rows, goal columns included.

(a) runs twice over: with goal alerts turned off for every user, and as shipped, where
it also enqueues one notification job per deviating day, which (c) does not do. Each
is timed twice from an empty summary table and the faster run is reported. Query
counts come from the timed runs; peak Python memory comes from a third run under
tracemalloc, so its overhead does not slow the timed runs. Finally one more hourly run
with nothing left to do measures the cost of the 48-hour catch-up scan.
"""

import argparse
import os
import platform
import resource
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nutricoach.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from nutricoach.jobs.models import Job  # noqa: E402
from nutricoach.jobs.registry import job_task  # noqa: E402
from nutricoach.jobs.runner import run_until_idle  # noqa: E402
from nutricoach.jobs.services import enqueue  # noqa: E402
from summaries import localtime, services, sql, tasks  # noqa: E402
from summaries.models import DailySummary  # noqa: E402

DAY = date(2026, 11, 10)
NOW = datetime(2026, 11, 11, 12, 5, tzinfo=UTC)
QUEUE = "data-aggregation"
NAIVE_TASK = "bench.summarise_one_user"


@job_task(NAIVE_TASK, queue=QUEUE, attempts=1)
def summarise_one_user(ctx, user_id, local_date):
    """Summarise one user's date: the naive one-job-per-user design."""
    user = User.objects.get(pk=user_id)
    services.summarise(user=user, local_date=date.fromisoformat(local_date), now=NOW)


def load_data(users):
    """Insert users, three meals each and a goal for every second user, with set-based SQL."""
    zones = list(localtime.zone_names())
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_user (password, is_superuser, email, full_name, time_zone, email_verified, "
            "energy_unit, notify_goal_alerts, notify_goal_reminders, notify_weekly_reports, "
            "notify_operations_alerts, is_active, is_staff, date_joined) "
            "SELECT '!', FALSE, 'bench' || n || '@example.com', '', (%s::text[])[1 + n %% %s], TRUE, 'kcal', "
            "TRUE, TRUE, TRUE, TRUE, TRUE, FALSE, now() FROM generate_series(1, %s) AS n",
            [zones, len(zones), users],
        )
        # Noon local time on the 10th is the 10th in every zone.
        cursor.execute(
            "INSERT INTO meals_meal (owner_id, name, description, description_hash, eaten_at, local_date, "
            "parse_status, parser, parse_error, archived, created_at, updated_at, "
            "calories, protein, carbs, fat, fiber) "
            "SELECT u.id, '', 'bench meal', '', (%s::date + time '12:00') AT TIME ZONE u.time_zone, %s, "
            "'parsed', 'local', '', FALSE, now(), now(), "
            "300 + (u.id * 7 + k * 13) %% 600, 20, 40, 10, 5 "
            "FROM accounts_user u CROSS JOIN generate_series(1, 3) AS k",
            [DAY, DAY],
        )
        cursor.execute(
            "INSERT INTO summaries_goal (user_id, calories, protein, carbs, fat, is_active, created_at, activated_at) "
            "SELECT id, 2000, 100, 250, 70, TRUE, now(), now() FROM accounts_user WHERE id % 2 = 0"
        )
        cursor.execute("VACUUM ANALYZE meals_meal")
        cursor.execute("VACUUM ANALYZE accounts_user")
        cursor.execute("VACUUM ANALYZE summaries_goal")


def reset():
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE summaries_dailysummary")
        # Meals reference jobs, so the job tables are emptied with DELETE, not TRUNCATE.
        # VACUUM then clears the deleted rows, so every timed run inserts its jobs into
        # the same empty tables.
        for table in ("jobs_joblog", "jobs_jobattempt", "jobs_job", "django_q_ormq"):
            cursor.execute(f"DELETE FROM {table}")
        for table in ("summaries_dailysummary", "jobs_job", "django_q_ormq"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def floor_statement():
    summary = sql.table(DailySummary)
    status = (
        "CASE WHEN g.id IS NULL THEN 'no_goal' WHEN SUM(m.calories) < g.calories * 0.8 THEN 'below' "
        "WHEN SUM(m.calories) > g.calories * 1.2 THEN 'above' ELSE 'within' END"
    )
    return (
        f"INSERT INTO {summary} (user_id, local_date, meal_count, calories, protein, carbs, fat, fiber, goal_id, "
        "goal_calories, goal_protein, goal_carbs, goal_fat, goal_status, revision, needs_recompute, computed_at) "
        "SELECT m.owner_id, m.local_date, COUNT(*), SUM(m.calories), SUM(m.protein), SUM(m.carbs), SUM(m.fat), "
        f"SUM(m.fiber), g.id, g.calories, g.protein, g.carbs, g.fat, {status}, 0, FALSE, now() "
        "FROM meals_meal m LEFT JOIN summaries_goal g ON g.user_id = m.owner_id AND g.is_active "
        "WHERE m.archived = FALSE AND m.local_date = %s "
        "GROUP BY m.owner_id, m.local_date, g.id, g.calories, g.protein, g.carbs, g.fat "
        "ON CONFLICT (user_id, local_date) DO UPDATE SET meal_count = excluded.meal_count, "
        "calories = excluded.calories, protein = excluded.protein, carbs = excluded.carbs, fat = excluded.fat, "
        "fiber = excluded.fiber, goal_id = excluded.goal_id, goal_calories = excluded.goal_calories, "
        "goal_protein = excluded.goal_protein, goal_carbs = excluded.goal_carbs, goal_fat = excluded.goal_fat, "
        "goal_status = excluded.goal_status, needs_recompute = FALSE, computed_at = excluded.computed_at"
    )


def run_floor():
    with connection.cursor() as cursor:
        cursor.execute(floor_statement(), [DAY])


def run_batched():
    tick = NOW.isoformat()
    enqueue(tasks.SUMMARISE_ENDED_DAYS, {"scheduled_for": tick}, idempotency_key=f"bench@{tick}")
    return run_until_idle(QUEUE, max_jobs=1_000_000)


def run_naive(user_ids):
    for user_id in user_ids:
        enqueue(NAIVE_TASK, {"user_id": user_id, "local_date": DAY.isoformat()})
    return run_until_idle(QUEUE, max_jobs=1_000_000)


class StatementLog:
    """Count and time every statement this process sends, by the start of its text.

    An execute wrapper, unlike CaptureQueriesContext, keeps no cap on the count.
    """

    def __init__(self):
        self.count = 0
        self.seconds_by_kind = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = " ".join(sql.split())[:70]
            self.seconds_by_kind[kind] = self.seconds_by_kind.get(kind, 0.0) + time.perf_counter() - started
            self.count += 1

    def slowest(self, count=4):
        ranked = sorted(self.seconds_by_kind.items(), key=lambda item: item[1], reverse=True)[:count]
        return [f"      {seconds:7.3f} s  {kind}" for kind, seconds in ranked]


def measure(label, function, *, repeats=2):
    """Time `function` from an empty summary table `repeats` times, then once under tracemalloc."""
    best = None
    for _ in range(repeats):
        reset()
        log = StatementLog()
        with connection.execute_wrapper(log):
            started = time.perf_counter()
            function()
            seconds = time.perf_counter() - started
        if best is None or seconds < best[0]:
            best = (seconds, log.count, log.slowest())
    reset()
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows = summary_rows()
    print(f"{label}: {best[0]:.3f} s, {best[1]} queries, peak Python memory {peak / 2**20:.1f} MiB, {rows[0]} rows")
    print("    slowest statements (COMMIT is not a statement here, so it counts as Python time):", *best[2], sep="\n")
    return {"seconds": best[0], "queries": best[1], "peak_mib": peak / 2**20, "rows": rows}


def summary_rows():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), SUM(meal_count), SUM(calories), COUNT(*) FILTER (WHERE goal_status = 'below'), "
            "COUNT(*) FILTER (WHERE goal_status = 'above') FROM summaries_dailysummary"
        )
        return cursor.fetchone()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="users to load (default 100000)")
    parser.add_argument("--batch-size", type=int, default=services.SUMMARY_BATCH_USERS,
                        help="users per nightly batch (default services.SUMMARY_BATCH_USERS, "
                        f"{services.SUMMARY_BATCH_USERS})")
    parser.add_argument("--naive-users", type=int, default=2_000,
                        help="users the one-job-per-user run covers before extrapolating (default 2000)")
    args = parser.parse_args()
    if args.users < 1 or not 1 <= args.naive_users <= args.users:
        parser.error("--users must be positive and --naive-users between 1 and --users")
    services.SUMMARY_BATCH_USERS = args.batch_size
    if connection.vendor != "postgresql":
        parser.error("DATABASE_URL must point at PostgreSQL, for example postgres://postgres@127.0.0.1:5432/nc_bench")

    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0]
        print(f"database {test_name}, PostgreSQL {server_version}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, batch size {services.SUMMARY_BATCH_USERS} users")
        started = time.perf_counter()
        load_data(args.users)
        print(f"loaded {args.users} users and {3 * args.users} meals in {time.perf_counter() - started:.1f} s")

        floor = measure("(c) floor, one INSERT ... SELECT", run_floor)
        User.objects.update(notify_goal_alerts=False)
        quiet = measure("(a) batched nightly run, goal alerts turned off", run_batched)
        User.objects.update(notify_goal_alerts=True)
        batched = measure("(a) batched nightly run", run_batched)
        alerts = Job.objects.filter(task="notifications.send").count()
        deviating = DailySummary.objects.filter(goal_status__in=services.ALERT_STATUSES, meal_count__gt=0).count()
        print(f"    goal alert jobs enqueued by (a): {alerts}")
        if alerts != deviating:
            print(f"MISMATCH: (a) enqueued {alerts} goal alerts for {deviating} deviating days")
        for label, measured in (("(a) without alerts", quiet), ("(a)", batched)):
            if measured["rows"] != floor["rows"]:
                print(f"MISMATCH: {label} wrote {measured['rows']}, (c) wrote {floor['rows']}")

        log = StatementLog()
        with connection.execute_wrapper(log):
            started = time.perf_counter()
            result = services.summaries_summarise_ended_days(now=NOW.replace(hour=13), batch_size=args.users + 1)
            idle_seconds = time.perf_counter() - started
        print(f"    hourly run with nothing left, one batch of all users: {idle_seconds:.3f} s, {log.count} queries, "
              f"{len(result.summarised)} summarised")

        naive_ids = list(User.objects.order_by("pk").values_list("pk", flat=True)[: args.naive_users])
        naive = measure(f"(b) one job per user, {args.naive_users} users", lambda: run_naive(naive_ids), repeats=1)
        scale = args.users / args.naive_users
        naive_seconds = naive["seconds"] * scale
        print(f"    extrapolated to {args.users} users: {naive_seconds:.1f} s, {int(naive['queries'] * scale)} queries")

        print(f"ratio (a) without alerts / (c): {quiet['seconds'] / floor['seconds']:.2f}")
        print(f"ratio (a) / (c): {batched['seconds'] / floor['seconds']:.2f}")
        print(f"ratio (b extrapolated) / (a): {naive_seconds / batched['seconds']:.1f}")
        print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
