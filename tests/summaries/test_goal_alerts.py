"""Goal alerts of the nightly run.

On PostgreSQL the batch statements insert the alert jobs themselves; on SQLite the
batch enqueues them with notifications_enqueue_many(). Every test here runs on both,
so both paths keep the same rules and write the same jobs.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings

from notifications.services import notification_enqueue, notifications_enqueue_many
from nutricoach.jobs import wakeups
from nutricoach.jobs.models import Job
from summaries import services, sql
from summaries.models import DailySummary
from tests.factories import GoalFactory, UserFactory
from tests.summaries.conftest import add_meals, utc

pytestmark = pytest.mark.django_db

NOV_10 = date(2026, 11, 10)
NIGHT = utc(2026, 11, 11, 0, 5)
# Columns that differ between any two enqueues of the same notification.
VOLATILE_COLUMNS = {"id", "run_at", "wakeup_sent_at", "created_at", "updated_at"}


def deviating_user(calories="1000.00", **fields):
    """A UTC user with a 2,000 kcal goal who ate `calories` on 10 November."""
    user = UserFactory(**fields)
    GoalFactory(user=user, calories=Decimal("2000.00"))
    add_meals(user, [utc(2026, 11, 10, 12)], calories=Decimal(calories))
    return user


def alert_jobs():
    jobs = Job.objects.filter(task="notifications.send").order_by("idempotency_key")
    return [
        {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields
         if field.attname not in VOLATILE_COLUMNS}
        for job in jobs
    ]


def test_alert_jobs_match_enqueue_many():
    under = deviating_user("1000.00")
    over = deviating_user("2500.00")
    deviating_user("2000.00")

    result = services.summaries_summarise_ended_days(now=NIGHT)
    written = alert_jobs()
    Job.objects.filter(task="notifications.send").delete()
    items = []
    for user in (under, over):
        summary = DailySummary.objects.get(user=user, local_date=NOV_10)
        data = {"summary_id": summary.pk, "goal_id": summary.goal_id, "local_date": "2026-11-10"}
        items.append((user.pk, "2026-11-10", data))
    notifications_enqueue_many(kind="goal_alert", items=items)

    assert result.notified == 2
    assert [job["idempotency_key"] for job in written] == sorted(
        [f"notify:{under.pk}:goal_alert:2026-11-10", f"notify:{over.pk}:goal_alert:2026-11-10"]
    )
    assert written == alert_jobs()


def test_alerts_skip_opted_out_and_inactive_users():
    subscribed = deviating_user()
    opted_out = deviating_user(notify_goal_alerts=False)
    leaving = deviating_user()
    services.summaries_mark_stale(pairs=[(leaving.pk, NOV_10)], now=NIGHT)
    leaving.is_active = False
    leaving.save()

    result = services.summaries_summarise_ended_days(now=NIGHT)

    assert sorted(result.summarised) == sorted([(subscribed.pk, NOV_10), (opted_out.pk, NOV_10)])
    # The stale row of the inactive user is recomputed but sends nothing.
    assert result.recomputed == [(leaving.pk, NOV_10)]
    assert result.notified == 1
    assert [job["payload"]["user_id"] for job in alert_jobs()] == [subscribed.pk]


def test_alert_enqueued_earlier_is_not_repeated():
    user = deviating_user()
    earlier = notification_enqueue(user_id=user.pk, kind="goal_alert", period_key="2026-11-10", data={}).job

    result = services.summaries_summarise_ended_days(now=NIGHT)

    assert result.summarised == [(user.pk, NOV_10)]
    assert result.notified == 0
    assert Job.objects.get(task="notifications.send").pk == earlier.pk


def test_recompute_sends_no_second_alert():
    user = deviating_user()
    first = services.summaries_summarise_ended_days(now=NIGHT)
    DailySummary.objects.filter(user=user).update(needs_recompute=True)

    second = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))

    assert (first.notified, second.notified) == (1, 0)
    assert second.summarised == [(user.pk, NOV_10)]
    assert len(alert_jobs()) == 1


def test_no_alert_while_summary_stays_stale(monkeypatch):
    user = deviating_user()
    services.summaries_summarise_ended_days(now=NIGHT)
    Job.objects.filter(task="notifications.send").delete()
    DailySummary.objects.filter(user=user).update(needs_recompute=True, revision=3)

    def seeing_revision_2(build):
        # As if a meal change raised the revision from 2 to 3 while the batch ran.
        def build_statement(**kwargs):
            statement, params = build(**kwargs)
            for revision in ("COALESCE(s.revision, 0), FALSE, %s", "s.revision, FALSE, %s"):
                statement = statement.replace(revision, "2, FALSE, %s")
            return statement, params
        return build_statement

    monkeypatch.setattr(sql, "ended_days_upsert", seeing_revision_2(sql.ended_days_upsert))
    monkeypatch.setattr(sql, "stale_upsert", seeing_revision_2(sql.stale_upsert))
    result = services.summaries_summarise_ended_days(now=utc(2026, 11, 11, 1, 5))

    assert result.summarised == [(user.pk, NOV_10)]
    assert result.recomputed == [(user.pk, NOV_10)]
    assert DailySummary.objects.get(user=user).needs_recompute is True
    assert result.notified == 0
    assert alert_jobs() == []


def test_alerts_wake_queue_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    pushed = []
    monkeypatch.setattr(wakeups, "push", lambda queue, count=1: pushed.append((queue, count)))
    for _ in range(3):
        deviating_user()

    with django_capture_on_commit_callbacks() as callbacks:
        result = services.summaries_summarise_ended_days(now=NIGHT)
    assert pushed == []

    for callback in callbacks:
        callback()
    assert result.notified == 3
    assert pushed == [("notifications", min(3, settings.JOB_QUEUES["notifications"]["workers"]))]
