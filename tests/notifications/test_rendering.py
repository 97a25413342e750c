"""Rendering of every notification kind: numbers in the user's unit, dates in their zone."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from notifications.exceptions import NotificationUndeliverable
from notifications.rendering import format_energy, render_notification
from tests.factories import DailySummaryFactory, GoalFactory, MealFactory, UserFactory

pytestmark = pytest.mark.django_db

AFTER_WEEK_49 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kcal", "unit", "expected"),
    [
        (Decimal("2000.00"), "kcal", "2,000 kcal"),
        (Decimal("2000.00"), "kj", "8,368 kJ"),
        (Decimal("0.40"), "kcal", "0 kcal"),
        (Decimal("0.50"), "kcal", "1 kcal"),
        (None, "kj", "no value"),
    ],
)
def test_format_energy_units(kcal, unit, expected):
    assert format_energy(kcal, unit) == expected


def test_goal_alert_in_kilojoules(alert_user):
    alert_user.energy_unit = "kj"
    alert_user.save()

    rendered = render_notification(user=alert_user, kind="goal_alert", period_key="2026-12-01", data={})

    assert "you ate 10,042 kJ against a goal of 8,368 kJ" in rendered.text
    assert "1,674 kJ (20%) above it" in rendered.text
    assert "kcal" not in rendered.text
    assert "kcal" not in rendered.html


def test_goal_alert_escapes_user_text(alert_user):
    alert_user.full_name = '<script>alert("x")</script> & Co'
    alert_user.save()

    rendered = render_notification(user=alert_user, kind="goal_alert", period_key="2026-12-01", data={})

    assert "<script>" not in rendered.html
    assert "Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co," in rendered.html
    assert 'Hi <script>alert("x")</script> & Co,' in rendered.text


def test_goal_alert_below_goal(alert_user):
    summary = alert_user.daily_summaries.get()
    summary.calories = Decimal("1500.00")
    summary.goal_status = "below"
    summary.save()

    rendered = render_notification(user=alert_user, kind="goal_alert", period_key="2026-12-01", data={})

    assert rendered.subject == "25% below your energy goal on Tuesday 1 December 2026"
    assert "500 kcal (25%) below it" in rendered.text


def test_goal_alert_without_goal_is_undeliverable(db):
    user = UserFactory()
    DailySummaryFactory(user=user, local_date=date(2026, 12, 1), calories=Decimal("1800.00"))

    with pytest.raises(NotificationUndeliverable, match="has no goal to compare with"):
        render_notification(user=user, kind="goal_alert", period_key="2026-12-01", data={})


def test_goal_reminder_counts_the_day(db):
    user = UserFactory(full_name="Bo", time_zone="America/New_York")
    GoalFactory(user=user, calories=Decimal("2200.00"))
    eaten_at = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    MealFactory(owner=user, eaten_at=eaten_at, calories=Decimal("650.00"))
    MealFactory(owner=user, eaten_at=eaten_at, calories=Decimal("450.00"))
    MealFactory(owner=user, eaten_at=eaten_at, calories=Decimal("900.00"), archived=True)
    MealFactory(owner=user, eaten_at=datetime(2026, 12, 2, 15, 0, tzinfo=UTC), calories=Decimal("300.00"))

    rendered = render_notification(user=user, kind="goal_reminder", period_key="2026-12-01", data={})

    assert rendered.subject == "1,100 kcal left for today"
    assert "So far on Tuesday 1 December 2026 you have logged 2 meals with 1,100 kcal." in rendered.text
    assert "That leaves 1,100 kcal of your goal of 2,200 kcal." in rendered.text
    assert "https://coach.example.test/api/meals?date=2026-12-01" in rendered.text
    assert "https://coach.example.test/api/docs" in rendered.text


def test_goal_reminder_without_meals(db):
    user = UserFactory()

    rendered = render_notification(user=user, kind="goal_reminder", period_key="2026-12-01", data={})

    assert rendered.subject == "No meals logged yet today"
    assert "You have not logged a meal on Tuesday 1 December 2026 yet." in rendered.text
    assert "Set a daily goal to see how much is left." in rendered.text


def test_weekly_report_lists_the_week(db):
    user = UserFactory(energy_unit="kj")
    goal = GoalFactory(user=user)
    # ISO week 2026-W49 runs from Monday 30 November to Sunday 6 December.
    for day, calories, status in [
        (date(2026, 11, 30), Decimal("1900.00"), "within"),
        (date(2026, 12, 2), Decimal("2500.00"), "above"),
        (date(2026, 12, 6), Decimal("2000.00"), "within"),
        (date(2026, 12, 7), Decimal("9000.00"), "above"),
    ]:
        DailySummaryFactory(
            user=user, local_date=day, calories=calories, goal=goal, goal_calories=goal.calories, goal_status=status
        )

    rendered = render_notification(
        user=user, kind="weekly_report", period_key="2026-W49", data={}, now=AFTER_WEEK_49
    )

    assert rendered.subject == "Your week from Monday 30 November 2026 to Sunday 6 December 2026"
    assert "you logged meals on 3 days and stayed within your goal on 2" in rendered.text
    # (1900 + 2500 + 2000) / 3 kcal = 2133.33 kcal = 8925.87 kJ.
    assert "You ate 8,926 kJ on an average logged day." in rendered.text
    assert "Monday 30 November 2026: 7,950 kJ, within goal" in rendered.text
    assert "Tuesday 1 December 2026: no meals logged" in rendered.text
    assert "Wednesday 2 December 2026: 10,460 kJ, above goal" in rendered.text
    assert "37,656 kJ" not in rendered.text
    assert "https://coach.example.test/api/summaries?start=2026-11-30&end=2026-12-06" in rendered.text
    assert rendered.html.count("no meals logged") == 4


def test_weekly_report_of_an_empty_week(db):
    user = UserFactory()

    rendered = render_notification(
        user=user, kind="weekly_report", period_key="2026-W49", data={}, now=AFTER_WEEK_49
    )

    assert "You logged no meals from Monday 30 November 2026 to Sunday 6 December 2026." in rendered.text


def test_operations_alert_in_the_staff_time_zone(db):
    staff = UserFactory(is_staff=True, time_zone="Asia/Tokyo")
    data = {
        "queue": "notifications",
        "metric": "waiting",
        "value": 1200,
        "threshold": 1000,
        "summary": "1200 jobs <waiting>",
    }

    rendered = render_notification(
        user=staff, kind="operations_alert", period_key="notifications:waiting:2026-12-04T21", data=data
    )

    assert rendered.subject == "[NutriCoach operations] notifications: waiting is 1200 (threshold 1000)"
    assert "in the hour of Saturday 5 December 2026, 06:00 to 07:00 JST (2026-12-04 21:00 UTC)" in rendered.text
    assert "https://coach.example.test/admin/jobs/job/?queue__exact=notifications" in rendered.text
    assert "https://coach.example.test/admin/jobs/queueoverview/" in rendered.text
    assert "1200 jobs <waiting>" in rendered.text
    assert "<p>1200 jobs &lt;waiting&gt;</p>" in rendered.html
    assert "https://coach.example.test/admin/jobs/job/?queue__exact=notifications&dead_letter=yes" in rendered.text
    assert 'href="https://coach.example.test/admin/jobs/job/?queue__exact=notifications&amp;dead_letter=yes"' in (
        rendered.html
    )


def test_weekly_report_before_the_week_ends(db):
    user = UserFactory(time_zone="Pacific/Auckland")
    DailySummaryFactory(user=user, local_date=date(2026, 11, 30), calories=Decimal("1900.00"))
    # Sunday 6 December 2026, 09:00 in Auckland.
    sunday_morning = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)

    rendered = render_notification(
        user=user, kind="weekly_report", period_key="2026-W49", data={}, now=sunday_morning
    )

    assert "Saturday 5 December 2026: no meals logged" in rendered.text
    assert "Sunday 6 December 2026: not over yet" in rendered.text
    assert rendered.html.count("not over yet") == 1
