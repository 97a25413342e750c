from datetime import date, timedelta
from decimal import Decimal

import pytest

from nutricoach.jobs.models import Job
from nutricoach.jobs.runner import run_until_idle
from nutricoach.jobs.services import enqueue
from summaries import services, tasks
from tests.factories import DailySummaryFactory, GoalFactory, UserFactory
from tests.summaries.conftest import add_meals, utc

pytestmark = pytest.mark.django_db

# 17:10 UTC on 10 November is 18:10 in Berlin and 09:10 in Los Angeles.
BERLIN_EVENING = utc(2026, 11, 10, 17, 10)


@pytest.fixture
def berlin_users():
    users = {
        "nothing_logged": UserFactory(time_zone="Europe/Berlin"),
        "far_under": UserFactory(time_zone="Europe/Berlin"),
        "on_track": UserFactory(time_zone="Europe/Berlin"),
        "no_goal": UserFactory(time_zone="Europe/Berlin"),
        "opted_out": UserFactory(time_zone="Europe/Berlin", notify_goal_reminders=False),
        "morning_zone": UserFactory(time_zone="America/Los_Angeles"),
    }
    for name in ("far_under", "on_track", "opted_out"):
        GoalFactory(user=users[name], calories=Decimal("2000.00"))
    add_meals(users["far_under"], [utc(2026, 11, 10, 8)], calories=Decimal("999.99"))
    add_meals(users["on_track"], [utc(2026, 11, 10, 8)], calories=Decimal("1000.00"))
    add_meals(users["no_goal"], [utc(2026, 11, 10, 8)], calories=Decimal("100.00"))
    return users


def test_reminders_go_to_idle_and_far_under_users(berlin_users, notification_jobs):
    result = services.goal_reminders_enqueue(now=BERLIN_EVENING)

    goal_of = {name: user.goals.filter(is_active=True).values_list("pk", flat=True).first() for name, user in berlin_users.items()}
    assert result.notified == 2
    assert sorted(notification_jobs("goal_reminder")) == sorted([
        (berlin_users["nothing_logged"].pk, "goal_reminder", "2026-11-10", {"local_date": "2026-11-10", "goal_id": None}),
        (berlin_users["far_under"].pk, "goal_reminder", "2026-11-10",
         {"local_date": "2026-11-10", "goal_id": goal_of["far_under"]}),
    ])


def test_reminders_catch_up_once_within_local_day(berlin_users, notification_jobs):
    missed = services.goal_reminders_enqueue(now=BERLIN_EVENING + timedelta(hours=4))
    repeat = services.goal_reminders_enqueue(now=BERLIN_EVENING + timedelta(hours=5))
    next_day = services.goal_reminders_enqueue(now=BERLIN_EVENING + timedelta(hours=6))

    assert missed.notified == 2
    assert repeat.notified == 0
    assert next_day.notified == 0
    assert len(notification_jobs("goal_reminder")) == 2


def test_reminders_wait_for_local_evening(berlin_users, notification_jobs):
    result = services.goal_reminders_enqueue(now=BERLIN_EVENING - timedelta(hours=1))

    assert result.notified == 0
    assert notification_jobs("goal_reminder") == []


def test_reminders_count_archived_meals(notification_jobs):
    user = UserFactory(time_zone="Europe/Berlin")
    add_meals(user, [utc(2026, 11, 10, 8)], archived=True)

    services.goal_reminders_enqueue(now=BERLIN_EVENING)

    assert user.pk not in [row[0] for row in notification_jobs("goal_reminder")]


def test_reminder_job_runs_in_batches(monkeypatch, berlin_users, notification_jobs):
    monkeypatch.setattr(services, "BATCH_USERS", 2)

    enqueue(tasks.CHECK_USER_GOALS, {"scheduled_for": BERLIN_EVENING.isoformat()})
    ran = run_until_idle("data-aggregation")

    assert ran == 3
    assert Job.objects.filter(task=tasks.CHECK_USER_GOALS, state="completed").count() == 3
    assert len(notification_jobs("goal_reminder")) == 2


# Weekly reports ---------------------------------------------------------------------

# Sunday 6 December 2026, 08:15 UTC: 09:15 in Berlin, 22:15 in Kiritimati (UTC+14),
# 00:15 in Los Angeles. ISO week 49 runs from Monday 30 November to Sunday 6 December.
SUNDAY_MORNING = utc(2026, 12, 6, 8, 15)


@pytest.fixture
def week_users():
    users = {
        "berlin": UserFactory(time_zone="Europe/Berlin"),
        "kiritimati": UserFactory(time_zone="Pacific/Kiritimati"),
        "los_angeles": UserFactory(time_zone="America/Los_Angeles"),
        "idle_week": UserFactory(time_zone="Europe/Berlin"),
        "opted_out": UserFactory(time_zone="Europe/Berlin", notify_weekly_reports=False),
    }
    for name in ("berlin", "kiritimati", "los_angeles", "opted_out"):
        DailySummaryFactory(user=users[name], local_date=date(2026, 12, 2), meal_count=3)
    DailySummaryFactory(user=users["idle_week"], local_date=date(2026, 11, 29), meal_count=3)
    return users


def test_weekly_report_per_user_and_iso_week(week_users, notification_jobs):
    goal = GoalFactory(user=week_users["berlin"])

    result = services.weekly_reports_enqueue(now=SUNDAY_MORNING)

    assert result.notified == 2
    reports = sorted(notification_jobs("weekly_report"))
    assert reports == sorted([
        (week_users["berlin"].pk, "weekly_report", "2026-W49",
         {"week": "2026-W49", "week_start": "2026-11-30", "week_end": "2026-12-06", "goal_id": goal.pk}),
        (week_users["kiritimati"].pk, "weekly_report", "2026-W49",
         {"week": "2026-W49", "week_start": "2026-11-30", "week_end": "2026-12-06", "goal_id": None}),
    ])


def test_weekly_report_catches_up_once(week_users, notification_jobs):
    later = services.weekly_reports_enqueue(now=SUNDAY_MORNING + timedelta(hours=1))
    los_angeles_morning = services.weekly_reports_enqueue(now=utc(2026, 12, 6, 17, 15))

    assert later.notified == 2
    assert los_angeles_morning.notified == 1
    assert sorted(row[0] for row in notification_jobs("weekly_report")) == sorted(
        [week_users["berlin"].pk, week_users["kiritimati"].pk, week_users["los_angeles"].pk]
    )


def test_weekly_report_not_on_weekdays(week_users, notification_jobs):
    result = services.weekly_reports_enqueue(now=utc(2026, 12, 5, 8, 15))

    assert result.notified == 0
    assert result.next_after_user_id is None
    assert notification_jobs("weekly_report") == []
