"""The send job against a real SMTP server on 127.0.0.1: what arrives, and what the log records."""

import logging
import time
from datetime import date

import pytest
from django.core import mail
from django.db.models import F

from notifications.models import DeliveryStatus, NotificationLog
from nutricoach.jobs import services as job_services
from nutricoach.jobs.models import ErrorKind, Job, JobState
from tests.notifications.helpers import enqueue_goal_alert, retry_delayed_sends, run_sends
from tests.notifications.smtp_server import BUSY, DROP_AFTER_DATA, REJECT, TEMPFAIL

pytestmark = pytest.mark.django_db

ALERT_DAY_WITHOUT_SUMMARY = date(2026, 12, 2)


def test_goal_alert_arrives_with_both_parts(smtp_mailer, alert_user, caplog):
    caplog.set_level(logging.INFO, logger="notifications")
    job = enqueue_goal_alert(alert_user).job

    assert run_sends() == 1

    assert len(smtp_mailer.messages) == 1
    received = smtp_mailer.messages[0]
    assert received.rcpt_tos == ["ann@example.com"]
    assert received.mail_from == "coach@example.test"
    assert received.subject == "20% above your energy goal on Tuesday 1 December 2026"
    assert "you ate 2,400 kcal against a goal of 2,000 kcal" in received.text
    assert "400 kcal (20%) above it, over 3 meals" in received.text
    assert "Protein: 90 g of 100 g" in received.text
    assert "https://coach.example.test/api/summaries?start=2026-12-01&end=2026-12-01" in received.text
    assert "https://coach.example.test/api/meals?date=2026-12-01" in received.text
    assert "<strong>400 kcal (20%) above</strong>" in received.html
    assert 'href="https://coach.example.test/api/summaries?start=2026-12-01&amp;end=2026-12-01"' in received.html
    assert 'href="https://coach.example.test/api/meals?date=2026-12-01"' in received.html

    log = NotificationLog.objects.get(user=alert_user, kind="goal_alert", period_key="2026-12-01")
    assert log.status == DeliveryStatus.SENT
    assert log.sent_at is not None
    assert log.channel == "email"
    assert log.recipient == "ann@example.com"
    assert log.subject == received.subject
    assert log.attempts == 1
    assert log.error == ""
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.result == {"log_id": log.id, "status": "sent", "sent_now": True, "detail": ""}
    assert f"notification {log.id} sent kind=goal_alert user={alert_user.id}" in caplog.messages
    assert list(job.logs.values_list("message", flat=True).order_by("id")) == [
        f"sending goal_alert 2026-12-01 to user {alert_user.id} (attempt 1)",
        f"notification {log.id} is sent",
    ]


def test_temporary_failure_then_accept_sends_once(smtp_mailer, alert_user):
    smtp_mailer.script.append(TEMPFAIL)
    job = enqueue_goal_alert(alert_user).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.messages == []
    assert job.state == JobState.DELAYED
    assert job.error_kind == ErrorKind.RETRYABLE
    assert "451" in job.error
    assert log.status == DeliveryStatus.SENDING
    assert "451" in log.error

    retry_delayed_sends()

    job.refresh_from_db()
    log.refresh_from_db()
    assert len(smtp_mailer.messages) == 1
    assert smtp_mailer.transactions == [TEMPFAIL, "accept"]
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 2
    assert log.status == DeliveryStatus.SENT
    assert log.attempts == 2


def test_busy_server_is_retried(smtp_mailer, alert_user):
    smtp_mailer.script.append(BUSY)
    job = enqueue_goal_alert(alert_user).job

    run_sends()
    job.refresh_from_db()
    assert job.state == JobState.DELAYED
    assert "421" in job.error
    assert NotificationLog.objects.get(user=alert_user).status == DeliveryStatus.SENDING

    retry_delayed_sends()

    assert len(smtp_mailer.messages) == 1
    assert NotificationLog.objects.get(user=alert_user).status == DeliveryStatus.SENT


def test_permanent_rejection_is_terminal(smtp_mailer, alert_user):
    smtp_mailer.script.append(REJECT)
    job = enqueue_goal_alert(alert_user).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.messages == []
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.dead_lettered_at is not None
    assert job.attempts_made == 1
    assert log.status == DeliveryStatus.FAILED
    assert "550" in log.error
    assert "RCPT TO ann@example.com" in log.error
    assert log.sent_at is None


def test_drop_after_data_is_unknown_and_not_repeated(smtp_mailer, alert_user, caplog):
    smtp_mailer.script.append(DROP_AFTER_DATA)
    job = enqueue_goal_alert(alert_user).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert len(smtp_mailer.dropped) == 1
    assert smtp_mailer.messages == []
    assert log.status == DeliveryStatus.UNKNOWN
    assert "after the message was sent and before the server replied" in log.error
    assert log.sent_at is None
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert any("outcome unknown" in message for message in caplog.messages)

    assert job_services.replay(job)
    run_sends()

    job.refresh_from_db()
    log.refresh_from_db()
    assert smtp_mailer.transactions == [DROP_AFTER_DATA]
    assert smtp_mailer.messages == []
    assert job.state == JobState.COMPLETED
    assert job.result["status"] == "unknown"
    assert job.result["sent_now"] is False
    assert log.status == DeliveryStatus.UNKNOWN


def test_second_delivery_sends_nothing(smtp_mailer, alert_user):
    first = enqueue_goal_alert(alert_user)
    run_sends()

    again = enqueue_goal_alert(alert_user)
    redelivery = job_services.enqueue("notifications.send", first.job.payload, idempotency_key="redelivery")
    run_sends()

    assert first.created is True
    assert again.created is False
    assert again.job.id == first.job.id
    redelivery.job.refresh_from_db()
    assert redelivery.job.state == JobState.COMPLETED
    assert redelivery.job.result["status"] == "sent"
    assert redelivery.job.result["sent_now"] is False
    assert len(smtp_mailer.messages) == 1
    assert smtp_mailer.transactions == ["accept"]
    assert NotificationLog.objects.get(user=alert_user).attempts == 1


def test_opted_out_user_gets_nothing(smtp_mailer, alert_user, caplog):
    alert_user.notify_goal_alerts = False
    alert_user.save()
    job = enqueue_goal_alert(alert_user).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.transactions == []
    assert job.state == JobState.COMPLETED
    assert job.result["status"] == "skipped"
    assert log.status == DeliveryStatus.SKIPPED
    assert log.error == "the user turned goal_alert emails off"
    assert any("skipped" in message and "goal_alert emails off" in message for message in caplog.messages)


def test_unverified_email_fails_without_retry(smtp_mailer, alert_user):
    alert_user.email_verified = False
    alert_user.save()
    job = enqueue_goal_alert(alert_user).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.transactions == []
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.attempts_made == 1
    assert "not verified" in job.error
    assert log.status == DeliveryStatus.FAILED
    assert log.error == (
        f"The email address of user {alert_user.id} is not verified; "
        "notifications are sent only to verified addresses."
    )


def test_missing_summary_fails_with_reason(smtp_mailer, alert_user):
    job = enqueue_goal_alert(alert_user, day=ALERT_DAY_WITHOUT_SUMMARY).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.transactions == []
    assert job.state == JobState.FAILED
    assert log.status == DeliveryStatus.FAILED
    assert "has no daily summary for 2026-12-02" in log.error


def test_crashed_claim_is_taken_over(smtp_mailer, alert_user):
    # A worker died after claiming the row and before talking to the server.
    NotificationLog.objects.create(
        user=alert_user, kind="goal_alert", period_key="2026-12-01", status=DeliveryStatus.SENDING, attempts=1
    )
    enqueue_goal_alert(alert_user)

    run_sends()

    log = NotificationLog.objects.get(user=alert_user)
    assert len(smtp_mailer.messages) == 1
    assert log.status == DeliveryStatus.SENT
    assert log.attempts == 2


def test_exhausted_retries_mark_the_log_failed(smtp_mailer, alert_user):
    smtp_mailer.script.extend([BUSY, BUSY])
    payload = enqueue_goal_alert(alert_user).job.payload
    Job.objects.all().delete()
    job = job_services.enqueue("notifications.send", payload, attempts=2).job

    run_sends()
    retry_delayed_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert job.state == JobState.FAILED
    assert job.attempts_made == 2
    assert smtp_mailer.messages == []
    assert log.status == DeliveryStatus.FAILED
    assert log.error.startswith("gave up after 2 attempts: SMTP server replied 421")


def test_overridden_mailers_are_used(settings, smtp_server, alert_user):
    # The test environment starts with Django's locmem mailer.
    enqueue_goal_alert(alert_user)
    run_sends()
    assert len(mail.outbox) == 1
    assert smtp_server.transactions == []

    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 5},
        }
    }
    log = NotificationLog.objects.get(user=alert_user)
    log.status = DeliveryStatus.FAILED
    log.save()
    enqueue_goal_alert_again = job_services.enqueue(
        "notifications.send", Job.objects.get().payload, idempotency_key="after-override"
    )
    run_sends()

    assert enqueue_goal_alert_again.created is True
    assert len(mail.outbox) == 1
    assert len(smtp_server.messages) == 1


def test_file_backend_writes_a_file(settings, tmp_path, alert_user):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path)},
        }
    }
    enqueue_goal_alert(alert_user)

    run_sends()

    files = list(tmp_path.iterdir())
    assert len(files) == 1
    content = files[0].read_text()
    assert "Subject: 20% above your energy goal on Tuesday 1 December 2026" in content
    assert "To: ann@example.com" in content
    assert NotificationLog.objects.get(user=alert_user).status == DeliveryStatus.SENT


@pytest.mark.django_db(transaction=True)
def test_superseded_attempt_stops_before_handover(smtp_mailer, alert_user):
    def newer_attempt_claims():
        NotificationLog.objects.filter(user=alert_user).update(attempts=F("attempts") + 1)

    smtp_mailer.handler.on_rcpt = newer_attempt_claims
    job = enqueue_goal_alert(alert_user).job

    started = time.monotonic()
    run_sends()
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.messages == []
    assert smtp_mailer.dropped == []
    assert job.state == JobState.COMPLETED
    assert job.result["sent_now"] is False
    assert job.result["detail"] == f"notification {log.id} was claimed by a newer attempt"
    assert log.status == DeliveryStatus.SENDING
    assert log.attempts == 2
    # Closing without QUIT: a QUIT sent mid-DATA would wait out the 5 s SMTP timeout.
    assert elapsed < 3


def test_missing_email_fails_without_retry(smtp_mailer, alert_user):
    alert_user.email = ""
    alert_user.save()
    job = enqueue_goal_alert(alert_user).job

    run_sends()

    job.refresh_from_db()
    log = NotificationLog.objects.get(user=alert_user)
    assert smtp_mailer.transactions == []
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert log.status == DeliveryStatus.FAILED
    assert log.error == f"User {alert_user.id} has no email address; add one to send notifications."
