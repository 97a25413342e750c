"""Shared steps of the notifications tests."""

from datetime import date

from notifications.services import notification_enqueue
from nutricoach.jobs import services as job_services
from nutricoach.jobs.models import Job, JobState
from nutricoach.jobs.runner import run_until_idle

ALERT_DATE = date(2026, 12, 1)


def enqueue_goal_alert(user, day=ALERT_DATE):
    return notification_enqueue(user_id=user.id, kind="goal_alert", period_key=day.isoformat())


def run_sends():
    return run_until_idle("notifications")


def retry_delayed_sends():
    """Make every delayed send due now, as its backoff would in time, and run them."""
    for job in Job.objects.filter(queue="notifications", state=JobState.DELAYED):
        job_services.retry_now(job)
    return run_sends()
