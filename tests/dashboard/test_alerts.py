import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from nutricoach.jobs import alerts, schedules
from nutricoach.jobs.models import Job, JobState, QueueState
from nutricoach.jobs.runner import run_until_idle
from nutricoach.periodic import PERIODIC_JOBS
from tests.factories import JobFactory, UserFactory
from tests.notifications.smtp_server import smtp_mailer, smtp_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 13, 20, tzinfo=UTC)


@pytest.fixture
def thresholds(settings):
    settings.JOB_ALERTS = {
        "oldest_waiting_seconds": 300,
        "failure_rate": 0.2,
        "failure_window_minutes": 15,
        "failure_min_finished": 10,
    }
    return settings.JOB_ALERTS


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, email="ops@example.com")


def notification_jobs():
    return list(Job.objects.filter(task="notifications.send").order_by("created_at"))


def finished_jobs(queue, *, completed, failed, at):
    for state, count in [(JobState.COMPLETED, completed), (JobState.FAILED, failed)]:
        JobFactory.create_batch(count, queue=queue, state=state, finished_at=at)


def test_old_waiting_job_alerts(thresholds):
    JobFactory(queue="notifications", state=JobState.WAITING, run_at=timezone.now() - timedelta(seconds=400))
    JobFactory(queue="maintenance", state=JobState.WAITING, run_at=timezone.now() - timedelta(seconds=100))

    found = alerts.find_queue_alerts()

    assert [(alert.queue, alert.metric) for alert in found] == [("notifications", "oldest_waiting")]
    assert found[0].threshold == 300
    assert 400 <= found[0].value < 430


def test_paused_queue_does_not_alert_on_wait(thresholds):
    JobFactory(queue="notifications", state=JobState.WAITING, run_at=timezone.now() - timedelta(hours=1))
    QueueState.objects.create(name="notifications", paused=True)

    assert alerts.find_queue_alerts() == []


def test_failure_rate_alerts(thresholds):
    now = timezone.now()
    finished_jobs("meal-processing", completed=7, failed=3, at=now - timedelta(minutes=5))
    finished_jobs("notifications", completed=9, failed=1, at=now - timedelta(minutes=5))

    found = alerts.find_queue_alerts(now=now)

    assert [(alert.queue, alert.metric, alert.value) for alert in found] == [("meal-processing", "failure_rate", 0.3)]
    assert found[0].summary == (
        "3 of 10 jobs of queue meal-processing finished in the last 15 minutes failed (30%, threshold 20%)."
    )


def test_failure_rate_needs_enough_jobs(thresholds):
    now = timezone.now()
    finished_jobs("meal-processing", completed=0, failed=9, at=now - timedelta(minutes=1))

    assert alerts.find_queue_alerts(now=now) == []


def test_failure_rate_ignores_old_jobs(thresholds):
    now = timezone.now()
    finished_jobs("meal-processing", completed=0, failed=20, at=now - timedelta(minutes=16))

    assert alerts.find_queue_alerts(now=now) == []


def test_alerts_notify_staff_once_per_hour(thresholds, staff, caplog):
    UserFactory(is_staff=False)
    UserFactory(is_staff=True, notify_operations_alerts=False)
    UserFactory(is_staff=True, is_active=False)
    JobFactory(queue="notifications", state=JobState.WAITING, run_at=NOW - timedelta(seconds=600))

    with caplog.at_level(logging.INFO, logger="nutricoach.jobs.alerts"):
        first = alerts.send_queue_alerts(now=NOW)
    again = alerts.send_queue_alerts(now=NOW + timedelta(minutes=5))
    next_hour = alerts.send_queue_alerts(now=NOW + timedelta(hours=1))

    assert first["recipients"] == 1
    assert first["enqueued"] == 1
    assert again["enqueued"] == 0
    assert next_hour["enqueued"] == 1
    jobs = notification_jobs()
    assert [job.payload["period_key"] for job in jobs] == [
        "notifications:oldest_waiting:2026-12-01T13",
        "notifications:oldest_waiting:2026-12-01T14",
    ]
    assert jobs[0].payload["user_id"] == staff.pk
    assert jobs[0].payload["kind"] == "operations_alert"
    data = jobs[0].payload["data"]
    assert data["queue"] == "notifications"
    assert data["metric"] == "oldest_waiting"
    assert data["threshold"] == 300
    assert data["overview_url"].endswith("/admin/jobs/queueoverview/")
    assert "queue alert oldest_waiting on notifications" in caplog.text
    assert "queue alerts: 1 found, 1 notifications enqueued for 1 staff members" in caplog.text


def test_alerts_reach_listed_accounts(thresholds, staff, settings):
    listed = UserFactory(is_staff=False, email="oncall@example.com")
    settings.STAFF_ALERT_EMAILS = ["OnCall@example.com"]
    JobFactory(queue="notifications", state=JobState.WAITING, run_at=NOW - timedelta(seconds=600))

    result = alerts.send_queue_alerts(now=NOW)

    assert result["recipients"] == 2
    assert sorted(job.payload["user_id"] for job in notification_jobs()) == sorted([staff.pk, listed.pk])


def test_alert_email_reaches_staff(thresholds, staff, smtp_mailer):
    JobFactory(queue="notifications", state=JobState.WAITING, run_at=NOW - timedelta(seconds=600))
    alerts.send_queue_alerts(now=NOW)

    # The waiting job above is a test job that the notifications queue would also run.
    Job.objects.filter(task="tests.noop").delete()
    ran = run_until_idle("notifications")

    assert ran == 1
    assert len(smtp_mailer.messages) == 1
    message = smtp_mailer.messages[0]
    assert message.rcpt_tos == ["ops@example.com"]
    assert "notifications" in message.subject
    assert "oldest_waiting" in message.subject
    assert "threshold 300" in message.subject


def test_no_alerts_enqueue_nothing(thresholds, staff):
    report = alerts.send_queue_alerts(now=NOW)

    assert report == {"alerts": [], "recipients": 0, "enqueued": 0}
    assert notification_jobs() == []


def test_alerts_without_recipients_log_warning(thresholds, caplog):
    JobFactory(queue="notifications", state=JobState.WAITING, run_at=NOW - timedelta(seconds=600))

    with caplog.at_level(logging.WARNING, logger="nutricoach.jobs.alerts"):
        report = alerts.send_queue_alerts(now=NOW)

    assert report["enqueued"] == 0
    assert notification_jobs() == []
    assert "1 queue alerts found but no active staff member receives operations alerts" in caplog.text


def test_alert_task_runs_on_maintenance_queue(thresholds, staff):
    from nutricoach.jobs.services import enqueue

    JobFactory(queue="data-aggregation", state=JobState.WAITING, run_at=timezone.now() - timedelta(seconds=900))
    job = enqueue("jobs.check_queue_alerts", {"scheduled_for": "2026-12-01T13:20:00+00:00"}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.queue == "maintenance"
    assert job.state == JobState.COMPLETED
    assert job.result["enqueued"] == 1
    assert [alert["queue"] for alert in job.result["alerts"]] == ["data-aggregation"]
    assert len(notification_jobs()) == 1


def test_alert_schedule_is_declared_every_five_minutes():
    declared = {job.name: job for job in PERIODIC_JOBS}

    job = declared["check-queue-alerts"]

    assert job.cron == "*/5 * * * *"
    assert job.task == "jobs.check_queue_alerts"
    schedules.validate(job)
