"""Restart Redis, then PostgreSQL, under the running product; nothing may be lost.

Both tests start servers of their own on free ports, so they run on either backend
whenever redis-server and the PostgreSQL 15 binaries are installed.
"""

import time
from collections import Counter

import pytest

from meals.models import Meal
from tests.factories import ApiTokenFactory
from tests.faults.meals_under_fault import DESCRIPTIONS, assert_nothing_lost, expected_item_counts, finished_count
from tests.faults.stack import manage, start_stack
from tests.processes import wait_for

pytestmark = [pytest.mark.workers, pytest.mark.redis]

MEALS_PER_PHASE = 100
DRAIN_TIMEOUT = 120


def post_meals(web, token, count):
    """Post `count` meals and return their ids; each must be accepted with 202."""
    meal_ids = []
    for number in range(count):
        status, body = web.post_meal(DESCRIPTIONS[number % len(DESCRIPTIONS)], token=token)
        assert status == 202, body
        meal_ids.append(body["meal_id"])
    return meal_ids


@pytest.mark.django_db(transaction=True)
def test_redis_restart_loses_no_meal(tmp_path, private_redis, processes):
    env = {"REDIS_URL": private_redis.url}
    web = start_stack(tmp_path, processes, **env)
    token = ApiTokenFactory().raw
    meal_ids = post_meals(web, token, MEALS_PER_PHASE)
    wait_for(lambda: finished_count(meal_ids) >= 20, timeout=60, interval=0.1, message="20 meals parsed")

    # Wake-ups queued in Redis are lost with the restart; meals posted meanwhile are
    # accepted and their wake-ups dropped with a warning.
    private_redis.stop()
    meal_ids += post_meals(web, token, 10)
    time.sleep(1)
    private_redis.start()
    meal_ids += post_meals(web, token, MEALS_PER_PHASE)
    wait_for(lambda: finished_count(meal_ids) == len(meal_ids), timeout=DRAIN_TIMEOUT, interval=0.2,
             message="every meal finished after the Redis restart")

    outcomes = assert_nothing_lost(meal_ids)
    assert outcomes["completed"] == len(meal_ids)
    assert Meal.objects.filter(pk__in=meal_ids, parse_status="parsed").count() == len(meal_ids)
    assert "wake-up for queue meal-processing not sent" in web.process.output()


def psql_rows(server, sql):
    return [row.split("|") for row in server.psql(sql, database="nutricoach")]


def finished_in(server):
    """Return how many jobs in the private database completed or failed."""
    return int(psql_rows(server, "SELECT count(*) FROM jobs_job WHERE state IN ('completed', 'failed')")[0][0])


def assert_nothing_lost_in(server, meal_count):
    """Check through psql that every meal is parsed once and every job completed once."""
    expected = expected_item_counts()
    meals = psql_rows(server, """
        SELECT m.id, m.description, m.parse_status, count(f.id), count(DISTINCT f.position),
               coalesce(max(f.position), -1)
        FROM meals_meal m LEFT JOIN meals_fooditem f ON f.meal_id = m.id GROUP BY m.id
    """)
    assert len(meals) == meal_count
    for meal_id, description, status, items, positions, last_position in meals:
        assert status == "parsed", meal_id
        assert int(items) == expected[description], meal_id
        assert int(positions) == int(items), meal_id
        assert int(last_position) == int(items) - 1, meal_id

    jobs = psql_rows(server, """
        SELECT j.id, j.state, j.attempts_made, count(a.id),
               count(a.id) FILTER (WHERE a.outcome = 'completed'), count(a.id) FILTER (WHERE a.finished_at IS NULL)
        FROM jobs_job j LEFT JOIN jobs_jobattempt a ON a.job_id = j.id
        WHERE j.task = 'meals.parse_meal' GROUP BY j.id
    """)
    assert len(jobs) == meal_count
    for job_id, state, attempts_made, attempts, completed, open_attempts in jobs:
        assert state == "completed", job_id
        assert int(attempts) == int(attempts_made), job_id
        assert int(completed) == 1, job_id
        assert int(open_attempts) == 0, job_id
    return Counter(outcome for (outcome,) in psql_rows(server, "SELECT outcome FROM jobs_jobattempt"))


@pytest.mark.postgres
def test_postgres_restart_loses_no_meal(tmp_path, private_postgres, private_redis, processes):
    private_postgres.create_database("nutricoach")
    env = {"DATABASE_URL": private_postgres.url("nutricoach"), "REDIS_URL": private_redis.url}
    manage("migrate", "--noinput", env=env)
    token = manage("shell", "-c", (
        "from accounts.models import ApiToken, User; "
        "user = User.objects.create_user('restart@example.com', time_zone='Europe/Berlin'); "
        "print(ApiToken.issue(user=user)[1])"
    ), env=env).split()[-1]
    web = start_stack(tmp_path, processes, **env)
    meal_ids = post_meals(web, token, MEALS_PER_PHASE)
    _, accepted = web.post_meal(DESCRIPTIONS[0], token=token)
    meal_ids.append(accepted["meal_id"])
    wait_for(lambda: finished_in(private_postgres) >= 20, timeout=60, interval=0.2, message="20 meals parsed")

    private_postgres.stop()
    status, body = web.post_meal(DESCRIPTIONS[0], token=token)
    assert status == 503
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["message"] == "The database is unavailable; retry shortly."
    status, body = web.request("GET", accepted["job_url"], token=token)
    assert status == 503
    assert body["error"]["code"] == "service_unavailable"
    time.sleep(2)

    private_postgres.start()
    status, body = web.request("GET", accepted["job_url"], token=token)
    assert status == 200, body
    meal_ids += post_meals(web, token, MEALS_PER_PHASE)

    wait_for(lambda: finished_in(private_postgres) == len(meal_ids), timeout=DRAIN_TIMEOUT, interval=0.5, message="every meal finished after the restart")
    outcomes = assert_nothing_lost_in(private_postgres, len(meal_ids))
    assert outcomes["completed"] == len(meal_ids)
    assert "database unavailable for POST /api/meals/parse" in web.process.output()
