import logging
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meals import services as meal_services
from meals.models import Meal
from nutricoach.jobs.models import Job, JobState
from nutricoach.jobs.runner import run_until_idle
from nutricoach.jobs.services import enqueue
from nutricoach.nutrients import ZERO
from summaries import services, sql, tasks
from summaries.models import DailySummary, GoalStatus
from tests.factories import GoalFactory, MealFactory, UserFactory
from tests.summaries.conftest import add_meals, utc

pytestmark = pytest.mark.django_db

NOV_10 = date(2026, 11, 10)


def summary_of(user, day):
    return DailySummary.objects.get(user=user, local_date=day)


def test_nightly_summarises_only_ended_days():
    berlin = UserFactory(time_zone="Europe/Berlin")
    los_angeles = UserFactory(time_zone="America/Los_Angeles")
    add_meals(berlin, [utc(2026, 11, 10, 12)])
    add_meals(los_angeles, [utc(2026, 11, 10, 20)])

    # 00:05 on 11 November in Berlin, 15:05 on 10 November in Los Angeles.
    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 10, 23, 5))

    assert result.summarised == [(berlin.pk, NOV_10)]
    assert result.next_after_user_id is None
    assert summary_of(berlin, NOV_10).meal_count == 1
    assert not DailySummary.objects.filter(user=los_angeles).exists()


def test_nightly_second_run_writes_nothing():
    user = UserFactory()
    add_meals(user, [utc(2026, 11, 10, 12), utc(2026, 11, 10, 13)])
    first = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))
    computed_at = summary_of(user, NOV_10).computed_at

    second = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))

    assert first.summarised == [(user.pk, NOV_10)]
    assert second.summarised == []
    assert second.recomputed == []
    assert summary_of(user, NOV_10).computed_at == computed_at


def test_nightly_catches_up_days_within_lookback():
    user = UserFactory(time_zone="Asia/Kathmandu")
    add_meals(user, [utc(2026, 11, 8, 6), utc(2026, 11, 9, 6), utc(2026, 11, 10, 6)])

    # After a scheduler outage: 05:00 UTC on 11 November. In Kathmandu (UTC+05:45) the
    # 9th ended 34 h 45 min ago and the 8th 58 h 45 min ago, beyond the 48 h window.
    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 5))

    assert sorted(result.summarised) == [(user.pk, date(2026, 11, 9)), (user.pk, NOV_10)]
    assert not DailySummary.objects.filter(user=user, local_date=date(2026, 11, 8)).exists()


def test_nightly_skips_inactive_users():
    user = UserFactory(is_active=False)
    add_meals(user, [utc(2026, 11, 10, 12)])

    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))

    assert result.summarised == []
    assert not DailySummary.objects.exists()


def test_nightly_alerts_deviating_days_once(notification_jobs):
    under = UserFactory()
    within = UserFactory()
    over = UserFactory()
    no_goal = UserFactory()
    for user in (under, within, over):
        GoalFactory(user=user, calories=Decimal("2000.00"))
    add_meals(under, [utc(2026, 11, 10, 12)], calories=Decimal("1000.00"))
    add_meals(within, [utc(2026, 11, 10, 12)], calories=Decimal("2000.00"))
    add_meals(over, [utc(2026, 11, 10, 12)], calories=Decimal("2500.00"))
    add_meals(no_goal, [utc(2026, 11, 10, 12)], calories=Decimal("9000.00"))

    first = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))
    DailySummary.objects.filter(user=over).update(needs_recompute=True)
    second = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))

    assert first.notified == 2
    assert second.summarised == [(over.pk, NOV_10)]
    assert second.notified == 0
    alerts = notification_jobs("goal_alert")
    assert sorted((user_id, period_key) for user_id, _, period_key, _ in alerts) == sorted(
        [(under.pk, "2026-11-10"), (over.pk, "2026-11-10")]
    )
    assert summary_of(under, NOV_10).goal_status == GoalStatus.BELOW
    assert summary_of(within, NOV_10).goal_status == GoalStatus.WITHIN
    assert summary_of(over, NOV_10).goal_status == GoalStatus.ABOVE
    assert summary_of(no_goal, NOV_10).goal_status == GoalStatus.NO_GOAL


def test_alert_data_holds_ids_and_dates(notification_jobs):
    user = UserFactory()
    goal = GoalFactory(user=user, calories=Decimal("2000.00"))
    add_meals(user, [utc(2026, 11, 10, 12)], calories=Decimal("100.00"))

    services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))

    summary = summary_of(user, NOV_10)
    assert notification_jobs("goal_alert") == [
        (user.pk, "goal_alert", "2026-11-10", {"summary_id": summary.pk, "goal_id": goal.pk, "local_date": "2026-11-10"}),
    ]


# Stale marking by meal changes ---------------------------------------------------------


@pytest.fixture
def summarised_day():
    """A Berlin user whose 10 November (one 500 kcal meal) was summarised by the nightly run."""
    user = UserFactory(time_zone="Europe/Berlin")
    (meal,) = add_meals(user, [utc(2026, 11, 10, 12)])
    services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))
    assert summary_of(user, NOV_10).needs_recompute is False
    return user, Meal.objects.get(pk=meal.pk)


def test_meal_total_change_marks_summary_stale(summarised_day):
    user, meal = summarised_day

    meal.calories = Decimal("650.00")
    meal.save()

    summary = summary_of(user, NOV_10)
    assert summary.needs_recompute is True
    assert summary.calories == Decimal("500.00")
    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))
    assert result.summarised == [(user.pk, NOV_10)]
    summary.refresh_from_db()
    assert (summary.calories, summary.needs_recompute) == (Decimal("650.00"), False)


def test_meal_name_change_leaves_summary(summarised_day):
    user, meal = summarised_day

    meal.name = "Lunch"
    meal.save()

    assert summary_of(user, NOV_10).needs_recompute is False


def test_moving_meal_marks_both_dates(summarised_day):
    user, meal = summarised_day

    meal.eaten_at = utc(2026, 11, 9, 12)
    meal.local_date = date(2026, 11, 9)
    meal.save()

    assert summary_of(user, NOV_10).needs_recompute is True
    assert summary_of(user, date(2026, 11, 9)).needs_recompute is True
    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))
    assert sorted(result.summarised) == [(user.pk, date(2026, 11, 9))]
    assert result.recomputed == [(user.pk, NOV_10)]
    assert summary_of(user, NOV_10).meal_count == 0
    assert summary_of(user, date(2026, 11, 9)).meal_count == 1


def test_archiving_meal_keeps_summary(summarised_day):
    user, meal = summarised_day
    before = summary_of(user, NOV_10)

    meal.archived = True
    meal.save()
    services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))

    summary = summary_of(user, NOV_10)
    assert (summary.meal_count, summary.calories, summary.needs_recompute) == (1, before.calories, False)


def test_deleting_meal_marks_summary_stale(summarised_day):
    user, meal = summarised_day

    meal.delete()

    assert summary_of(user, NOV_10).needs_recompute is True


def test_reparse_changing_totals_marks_summary_stale(summarised_day):
    user, meal = summarised_day

    stored = meal_services.meal_store_parse(
        meal_id=meal.pk, description_hash=meal.description_hash, parser="local", items=[]
    )

    assert stored.calories == ZERO
    assert summary_of(user, NOV_10).needs_recompute is True


def test_late_meal_for_old_date_creates_stale_row():
    user = UserFactory(time_zone="Pacific/Kiritimati")

    # Logged weeks later, far outside the look-back window.
    MealFactory(owner=user, eaten_at=utc(2026, 10, 1, 12), calories=Decimal("300.00"))
    stale = summary_of(user, date(2026, 10, 2))
    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))

    assert stale.needs_recompute is True
    assert stale.computed_at is None
    assert result.recomputed == [(user.pk, date(2026, 10, 2))]
    assert summary_of(user, date(2026, 10, 2)).calories == Decimal("300.00")


def test_meal_of_today_creates_no_row():
    user = UserFactory(time_zone="Pacific/Kiritimati")

    meal_services.meal_create_for_parsing(owner=user, description="an apple")

    assert not DailySummary.objects.exists()


def test_stale_row_of_day_in_progress_waits():
    user = UserFactory(time_zone="America/Los_Angeles")
    add_meals(user, [utc(2026, 11, 10, 20)])
    services.summarise(user=user, local_date=NOV_10, now=utc(2026, 11, 10, 21))
    DailySummary.objects.filter(user=user).update(needs_recompute=True)

    early = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 7, 5))
    late = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 8, 5))

    assert early.recomputed == []
    assert late.summarised == [(user.pk, NOV_10)]


def test_change_during_run_keeps_row_stale():
    user = UserFactory()
    add_meals(user, [utc(2026, 11, 10, 12)])
    services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))
    DailySummary.objects.filter(user=user).update(needs_recompute=True, revision=3)
    # A run whose snapshot saw revision 2 finishes after a meal change raised it to 3.
    statement, params = sql.one_day_upsert(user_id=user.pk, local_date=NOV_10, computed_at=utc(2026, 11, 11, 1))
    statement = statement.replace("COALESCE(s.revision, 0)", "2")
    with connection.cursor() as cursor:
        cursor.execute(statement, params)

    assert summary_of(user, NOV_10).needs_recompute is True
    assert summary_of(user, NOV_10).revision == 3


def test_mark_stale_accepts_bulk_pairs():
    user = UserFactory()
    add_meals(user, [utc(2026, 11, 10, 12)])
    services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 0, 5))

    count = services.summaries_mark_stale(
        pairs=[(user.pk, NOV_10), (user.pk, "2026-11-09"), (user.pk, NOV_10)], now=utc(2026, 11, 11, 2)
    )

    assert count == 2
    assert summary_of(user, NOV_10).needs_recompute is True
    assert summary_of(user, NOV_10).revision == 1
    assert summary_of(user, date(2026, 11, 9)).needs_recompute is True


# Batches and the job runtime ------------------------------------------------------------


def test_batches_continue_in_follow_up_jobs(monkeypatch, caplog):
    monkeypatch.setattr(services, "SUMMARY_BATCH_USERS", 2)
    users = [UserFactory() for _ in range(5)]
    for user in users:
        add_meals(user, [utc(2026, 11, 10, 12)])
    tick = "2026-11-11T00:05:00+00:00"

    with caplog.at_level(logging.INFO, logger="summaries"):
        enqueue(tasks.SUMMARISE_ENDED_DAYS, {"scheduled_for": tick}, idempotency_key=f"schedule:test@{tick}")
        ran = run_until_idle("data-aggregation")

    jobs = list(Job.objects.filter(task=tasks.SUMMARISE_ENDED_DAYS).order_by("created_at"))
    assert ran == 3
    assert [job.state for job in jobs] == [JobState.COMPLETED] * 3
    assert [job.payload.get("after_user_id", 0) for job in jobs] == [0, users[1].pk, users[3].pk]
    assert [job.result["summarised"] for job in jobs] == [2, 2, 1]
    assert jobs[-1].result["follow_up"] is None
    assert DailySummary.objects.filter(local_date=NOV_10).count() == 5
    assert f"ended days at 2026-11-11T00:05:00+00:00 for users 0 to {users[1].pk}: 2 summarised" in caplog.text


def test_redelivered_batch_changes_nothing(monkeypatch):
    monkeypatch.setattr(services, "SUMMARY_BATCH_USERS", 2)
    users = [UserFactory() for _ in range(3)]
    for user in users:
        add_meals(user, [utc(2026, 11, 10, 12)])
    tick = "2026-11-11T00:05:00+00:00"
    enqueue(tasks.SUMMARISE_ENDED_DAYS, {"scheduled_for": tick})
    run_until_idle("data-aggregation")
    rows_before = list(DailySummary.objects.order_by("pk").values_list("pk", "computed_at"))

    # The same tick delivered again, and a retry of the first batch.
    enqueue(tasks.SUMMARISE_ENDED_DAYS, {"scheduled_for": tick})
    enqueue(tasks.SUMMARISE_ENDED_DAYS, {"scheduled_for": tick, "after_user_id": 0})
    run_until_idle("data-aggregation")

    jobs = Job.objects.filter(task=tasks.SUMMARISE_ENDED_DAYS)
    assert jobs.count() == 4  # two first batches, one shared follow-up per cursor
    assert sorted(job.result["summarised"] for job in jobs) == [0, 0, 1, 2]
    assert list(DailySummary.objects.order_by("pk").values_list("pk", "computed_at")) == rows_before


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"scheduled_for": "2026-11-11T00:05:00"}, "has no UTC offset"),
        ({"scheduled_for": "2026-11-11T00:05:00+00:00", "after_user_id": "7"}, "after_user_id '7' is not a user id"),
    ],
)
def test_bad_payload_dead_letters_job(payload, message):
    job = enqueue(tasks.SUMMARISE_ENDED_DAYS, payload).job

    run_until_idle("data-aggregation")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_kind == "terminal"
    assert message in job.error
    assert not DailySummary.objects.exists()


def _users_with_meals(count):
    users = UserFactory.create_batch(count)
    for user in users:
        GoalFactory(user=user, calories=Decimal("2000.00"))
    meals = []
    for user in users:
        meals += add_meals(user, [utc(2026, 11, 10, 8), utc(2026, 11, 10, 13)], calories=Decimal("300.00"))
    # A stale summary per user, so the recompute statement has rows too.
    services.summaries_mark_stale(pairs=[(user.pk, date(2026, 10, 1)) for user in users], now=utc(2026, 11, 11))
    return users


def test_batch_query_count_does_not_grow_with_users():
    counts = {}
    for size in (10, 100):
        users = _users_with_meals(size)
        after = users[0].pk - 1
        with CaptureQueriesContext(connection) as queries:
            result = services.summaries_summarise_ended_days(
                now=utc(2026, 11, 11, 0, 5), after_user_id=after, batch_size=size
            )
        assert len(result.summarised) == size
        assert len(result.recomputed) == size
        assert result.notified == size
        counts[size] = len(queries)

    assert counts[10] == counts[100]
    assert counts[10] <= 8


def test_nightly_of_many_days_counts_each_once():
    user = UserFactory(time_zone="Europe/Berlin")
    start = utc(2026, 11, 1, 11)
    add_meals(user, [start + timedelta(days=offset) for offset in range(10)])

    seen = []
    now = utc(2026, 11, 1, 0, 5)
    while now < utc(2026, 11, 12):
        result = services.summaries_summarise_ended_days(now=now)
        seen += result.summarised + result.recomputed
        now += timedelta(hours=1)

    assert sorted(seen) == [(user.pk, date(2026, 11, 1) + timedelta(days=offset)) for offset in range(10)]
