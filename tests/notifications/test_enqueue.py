"""Enqueueing notifications: validation, idempotency and the operations alert fan-out."""

import logging
import re
from datetime import UTC, datetime

import pytest

from notifications.exceptions import NotificationRequestError
from notifications.models import DeliveryStatus, NotificationLog
from notifications.services import notification_enqueue, notifications_insert_sql, operations_alert_enqueue
from nutricoach.jobs.models import Job
from tests.factories import UserFactory
from tests.notifications.helpers import run_sends

pytestmark = pytest.mark.django_db

ALERT_AT = datetime(2026, 12, 4, 21, 37, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "period_key", "data", "message"),
    [
        ("goal_alert", "2026-13-01", {}, "Invalid period key '2026-13-01' for goal_alert: use the local date"),
        ("goal_reminder", "yesterday", {}, "Invalid period key 'yesterday' for goal_reminder"),
        ("weekly_report", "2026-W54", {}, "Invalid period key '2026-W54' for weekly_report: use the ISO week"),
        ("weekly_report", "2026-12-01", {}, "use the ISO week as YYYY-Www"),
        ("operations_alert", "notifications:waiting", {}, "use <queue>:<metric>:<YYYY-MM-DDTHH>"),
        ("daily_digest", "2026-12-01", {}, "Unknown notification kind 'daily_digest'"),
        ("goal_alert", "2026-12-01", ["not", "a", "dict"], "must be a JSON object, got list"),
        (
            "operations_alert",
            "notifications:waiting:2026-12-04T21",
            {"queue": "notifications", "metric": "waiting", "value": 5},
            "missing threshold",
        ),
        (
            "operations_alert",
            "notifications:waiting:2026-12-04T21",
            {"queue": "maintenance", "metric": "waiting", "value": 5, "threshold": 1},
            "names maintenance:waiting but the period key names notifications:waiting",
        ),
        (
            "operations_alert",
            "notifications:waiting:2026-12-04T21",
            {"queue": "notifications", "metric": "waiting", "value": "many", "threshold": 1},
            "value must be a number, got 'many'",
        ),
    ],
)
def test_invalid_request_writes_nothing(kind, period_key, data, message):
    user = UserFactory()

    with pytest.raises(NotificationRequestError, match=re.escape(message)):
        notification_enqueue(user_id=user.id, kind=kind, period_key=period_key, data=data)

    assert Job.objects.count() == 0
    assert NotificationLog.objects.count() == 0


def test_enqueue_is_idempotent_per_period():
    user = UserFactory()

    first = notification_enqueue(user_id=user.id, kind="weekly_report", period_key="2026-W49")
    second = notification_enqueue(user_id=user.id, kind="weekly_report", period_key="2026-W49")
    other_week = notification_enqueue(user_id=user.id, kind="weekly_report", period_key="2026-W50")

    assert first.created is True
    assert second.created is False
    assert second.job.id == first.job.id
    assert other_week.created is True
    assert first.job.queue == "notifications"
    assert first.job.max_attempts == 5
    assert first.job.backoff["kind"] == "exponential_jitter"
    assert first.job.payload == {"user_id": user.id, "kind": "weekly_report", "period_key": "2026-W49", "data": {}}


def test_operations_alert_goes_to_staff_and_listed(settings, caplog):
    staff = UserFactory(is_staff=True, email="ops@example.com")
    listed = UserFactory(email="oncall@example.com")
    UserFactory(is_staff=True, notify_operations_alerts=False)
    UserFactory(is_staff=True, is_active=False)
    UserFactory(email="customer@example.com")
    settings.STAFF_ALERT_EMAILS = ["OnCall@example.com", "pager@example.com"]

    results = operations_alert_enqueue(
        queue="notifications", metric="waiting", value=1200, threshold=1000, at=ALERT_AT
    )

    assert sorted(result.job.payload["user_id"] for result in results) == [staff.id, listed.id]
    assert {result.job.payload["period_key"] for result in results} == {"notifications:waiting:2026-12-04T21"}
    assert results[0].job.payload["data"] == {
        "queue": "notifications", "metric": "waiting", "value": 1200, "threshold": 1000,
    }
    assert any("STAFF_ALERT_EMAILS lists pager@example.com, which has no account" in line for line in caplog.messages)


def test_operations_alert_once_per_hour(settings, mailoutbox):
    settings.STAFF_ALERT_EMAILS = []
    staff = UserFactory(is_staff=True)

    first = operations_alert_enqueue(queue="notifications", metric="waiting", value=1200, threshold=1000, at=ALERT_AT)
    later = operations_alert_enqueue(
        queue="notifications", metric="waiting", value=1500, threshold=1000, at=ALERT_AT.replace(minute=59)
    )
    next_hour = operations_alert_enqueue(
        queue="notifications", metric="waiting", value=1500, threshold=1000, at=ALERT_AT.replace(hour=22)
    )
    run_sends()

    assert [result.created for result in first + later + next_hour] == [True, False, True]
    assert [message.to for message in mailoutbox] == [[staff.email], [staff.email]]
    assert NotificationLog.objects.filter(user=staff, status=DeliveryStatus.SENT).count() == 2


def test_operations_alert_skips_non_staff(mailoutbox, caplog):
    caplog.set_level(logging.WARNING, logger="notifications")
    customer = UserFactory()
    notification_enqueue(
        user_id=customer.id,
        kind="operations_alert",
        period_key="notifications:waiting:2026-12-04T21",
        data={"queue": "notifications", "metric": "waiting", "value": 1, "threshold": 0},
    )

    run_sends()

    log = NotificationLog.objects.get(user=customer)
    assert mailoutbox == []
    assert log.status == DeliveryStatus.SKIPPED
    assert log.error == "operations alerts go only to staff and to the addresses in STAFF_ALERT_EMAILS"


def test_set_based_enqueue_rejects_week_kinds():
    with pytest.raises(NotificationRequestError, match="supports only goal_alert, goal_reminder"):
        notifications_insert_sql(kind="weekly_report", source="reports", now=ALERT_AT)
