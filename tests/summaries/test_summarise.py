from datetime import date
from decimal import Decimal

import pytest

from summaries import services
from summaries.models import DailySummary, GoalStatus
from tests.factories import GoalFactory, UserFactory
from tests.summaries.conftest import add_meals, utc

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 10)
AFTER_DAY = utc(2026, 11, 11, 6)


def test_summarise_counts_archived_meals():
    user = UserFactory(time_zone="Europe/Berlin")
    add_meals(user, [utc(2026, 11, 10, 7)], calories=Decimal("400.25"))
    add_meals(user, [utc(2026, 11, 10, 18)], calories=Decimal("999.00"), archived=True)

    summary = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert summary.meal_count == 2
    assert summary.calories == Decimal("1399.25")


def test_summarise_totals_meals_of_local_date():
    user = UserFactory(time_zone="Europe/Berlin")
    add_meals(user, [utc(2026, 11, 10, 7), utc(2026, 11, 10, 12)], calories=Decimal("400.25"), protein=Decimal("20.10"))
    add_meals(user, [utc(2026, 11, 10, 23, 30)], calories=Decimal("111.00"))  # 00:30 on 11 November in Berlin

    summary = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert summary.user == user
    assert summary.local_date == DAY
    assert summary.meal_count == 2
    assert summary.calories == Decimal("800.50")
    assert summary.protein == Decimal("40.20")
    assert summary.goal is None
    assert summary.goal_calories is None
    assert summary.goal_status == GoalStatus.NO_GOAL
    assert summary.needs_recompute is False
    assert summary.computed_at is not None


@pytest.mark.parametrize(
    ("calories", "status"),
    [
        ("1599.99", GoalStatus.BELOW),
        ("1600.00", GoalStatus.WITHIN),
        ("2400.00", GoalStatus.WITHIN),
        ("2400.01", GoalStatus.ABOVE),
    ],
)
def test_summarise_compares_with_active_goal(calories, status):
    user = UserFactory()
    GoalFactory(user=user, calories=Decimal("3000.00"), is_active=False)
    goal = GoalFactory(user=user, calories=Decimal("2000.00"), protein=Decimal("90.00"))
    add_meals(user, [utc(2026, 11, 10, 12)], calories=Decimal(calories))

    summary = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert summary.goal == goal
    assert summary.goal_calories == Decimal("2000.00")
    assert summary.goal_protein == Decimal("90.00")
    assert summary.goal_status == status


def test_summarise_again_gives_same_row():
    user = UserFactory()
    GoalFactory(user=user)
    add_meals(user, [utc(2026, 11, 10, 12)])

    first = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)
    second = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert second.pk == first.pk
    fields = ["meal_count", "calories", "protein", "goal_id", "goal_calories", "goal_status", "needs_recompute"]
    assert [getattr(second, name) for name in fields] == [getattr(first, name) for name in fields]
    assert DailySummary.objects.count() == 1


def test_summarise_day_without_meals_writes_zero_row():
    user = UserFactory()

    summary = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert summary.meal_count == 0
    assert summary.calories == Decimal("0.00")
    assert summary.goal_status == GoalStatus.NO_GOAL


def test_summarise_alerts_deviation_once(notification_jobs):
    user = UserFactory()
    goal = GoalFactory(user=user, calories=Decimal("2000.00"))
    add_meals(user, [utc(2026, 11, 10, 12)], calories=Decimal("3000.00"))

    summary = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)
    services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert notification_jobs() == [
        (user.pk, "goal_alert", "2026-11-10", {"summary_id": summary.pk, "goal_id": goal.pk, "local_date": "2026-11-10"}),
    ]


def test_summarise_without_goal_sends_no_alert(notification_jobs):
    user = UserFactory()
    add_meals(user, [utc(2026, 11, 10, 12)], calories=Decimal("9000.00"))

    services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert notification_jobs() == []


def test_summarise_day_in_progress_sends_no_alert(notification_jobs):
    user = UserFactory(time_zone="America/Los_Angeles")
    GoalFactory(user=user, calories=Decimal("2000.00"))
    add_meals(user, [utc(2026, 11, 10, 18)], calories=Decimal("100.00"))

    # 03:00 UTC on 11 November is still 10 November in Los Angeles.
    summary = services.summarise(user=user, local_date=DAY, now=utc(2026, 11, 11, 3))

    assert summary.goal_status == GoalStatus.BELOW
    assert notification_jobs() == []


def test_summarise_respects_alert_preference(notification_jobs):
    user = UserFactory(notify_goal_alerts=False)
    GoalFactory(user=user, calories=Decimal("2000.00"))
    add_meals(user, [utc(2026, 11, 10, 12)], calories=Decimal("100.00"))

    summary = services.summarise(user=user, local_date=DAY, now=AFTER_DAY)

    assert summary.goal_status == GoalStatus.BELOW
    assert notification_jobs() == []


@pytest.mark.parametrize("bad_date", ["2026-11-10", utc(2026, 11, 10, 0), None])
def test_summarise_rejects_non_date(bad_date):
    user = UserFactory()

    with pytest.raises(services.SummaryInputError, match="is not a date; pass a datetime.date"):
        services.summarise(user=user, local_date=bad_date, now=AFTER_DAY)

    assert not DailySummary.objects.exists()
