"""The notification log in the admin: the attention filter and the resend action."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from notifications.models import DeliveryStatus, NotificationLog
from nutricoach.jobs.models import Job, JobState
from tests.factories import NotificationLogFactory, UserFactory
from tests.notifications.helpers import enqueue_goal_alert, run_sends
from tests.notifications.smtp_server import DROP_AFTER_DATA

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:notifications_notificationlog_changelist")


@pytest.fixture
def staff_client():
    staff = UserFactory(is_staff=True, is_superuser=True, email="admin@example.com")
    client = Client()
    client.force_login(staff)
    client.staff = staff
    return client


def test_attention_filter_lists_unknown_rows(staff_client):
    unknown = NotificationLogFactory(status=DeliveryStatus.UNKNOWN)
    NotificationLogFactory(status=DeliveryStatus.SENT)
    NotificationLogFactory(status=DeliveryStatus.FAILED)

    response = staff_client.get(CHANGELIST, {"attention": "unknown"})

    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == [unknown]


def test_resend_unknown_after_drop(staff_client, smtp_mailer, alert_user):
    smtp_mailer.script.append(DROP_AFTER_DATA)
    first_job = enqueue_goal_alert(alert_user).job
    run_sends()
    log = NotificationLog.objects.get(user=alert_user)
    assert log.status == DeliveryStatus.UNKNOWN

    response = staff_client.post(
        CHANGELIST, {"action": "resend", "_selected_action": [log.pk]}, follow=True
    )

    assert response.status_code == 200
    log.refresh_from_db()
    resend_job = Job.objects.exclude(pk=first_job.pk).get()
    assert log.status == DeliveryStatus.SENDING
    assert resend_job.payload == first_job.payload
    assert resend_job.idempotency_key.startswith(f"notify:{alert_user.id}:goal_alert:2026-12-01:resend:")
    entry = LogEntry.objects.get(object_id=str(log.pk))
    assert entry.user == staff_client.staff
    assert entry.action_flag == CHANGE
    assert entry.get_change_message() == f"Resend requested as job {resend_job.id} (status was unknown)."
    assert "1 notifications enqueued for resending." in response.content.decode()

    run_sends()

    log.refresh_from_db()
    resend_job.refresh_from_db()
    assert resend_job.state == JobState.COMPLETED
    assert log.status == DeliveryStatus.SENT
    assert log.attempts == 2
    assert len(smtp_mailer.dropped) == 1
    assert len(smtp_mailer.messages) == 1


def test_resend_ignores_sent_rows(staff_client):
    sent = NotificationLogFactory(status=DeliveryStatus.SENT)

    response = staff_client.post(CHANGELIST, {"action": "resend", "_selected_action": [sent.pk]}, follow=True)

    sent.refresh_from_db()
    assert sent.status == DeliveryStatus.SENT
    assert Job.objects.count() == 0
    assert LogEntry.objects.count() == 0
    assert "1 notifications were not resent because they were sent, skipped or are being sent." in (
        response.content.decode()
    )


def test_resend_needs_change_permission():
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notificationlog"))
    client = Client()
    client.force_login(viewer)
    unknown = NotificationLogFactory(status=DeliveryStatus.UNKNOWN)

    response = client.post(CHANGELIST, {"action": "resend", "_selected_action": [unknown.pk]})

    unknown.refresh_from_db()
    assert response.status_code == 200
    assert unknown.status == DeliveryStatus.UNKNOWN
    assert Job.objects.count() == 0
