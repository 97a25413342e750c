"""Queue health alerts: tell staff when jobs wait too long or fail too often.

A periodic job runs `send_queue_alerts` every few minutes. Each alert goes to every
active staff member who has operations alerts on, as one `operations_alert`
notification per (queue, metric, UTC hour): the notification's idempotency key makes
repeated checks within that hour send nothing more.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from notifications.periods import operations_key
from notifications.selectors import operations_alert_recipients
from notifications.services import notification_enqueue
from nutricoach.jobs import selectors
from nutricoach.jobs.models import Job, JobState

logger = logging.getLogger(__name__)

ALERT_KIND = "operations_alert"
OLDEST_WAITING = "oldest_waiting"
FAILURE_RATE = "failure_rate"


@dataclass(frozen=True)
class QueueAlert:
    queue: str
    metric: str
    value: float
    threshold: float
    summary: str


def find_queue_alerts(*, now=None, thresholds=None):
    """Return an alert for each queue metric past its threshold in settings.JOB_ALERTS.

    A paused queue raises no oldest-waiting alert, because its jobs wait on purpose.
    """
    now = now or timezone.now()
    thresholds = thresholds or settings.JOB_ALERTS
    alerts = []

    max_wait = thresholds["oldest_waiting_seconds"]
    for queue in selectors.queue_metrics():
        age = queue.oldest_waiting_age_seconds
        if queue.paused or age is None or age <= max_wait:
            continue
        alerts.append(QueueAlert(
            queue=queue.name,
            metric=OLDEST_WAITING,
            value=round(age, 1),
            threshold=max_wait,
            summary=f"The oldest waiting job of queue {queue.name} has waited {age:.0f} s (threshold {max_wait} s); "
            f"{queue.waiting} jobs are waiting.",
        ))

    window = thresholds["failure_window_minutes"]
    max_rate = thresholds["failure_rate"]
    rows = (
        Job.objects.filter(finished_at__gte=now - timedelta(minutes=window), state__in=[JobState.COMPLETED, JobState.FAILED])
        .values("queue")
        .annotate(finished=Count("id"), failed=Count("id", filter=Q(state=JobState.FAILED)))
        .order_by("queue")
    )
    for row in rows:
        if row["finished"] < thresholds["failure_min_finished"]:
            continue
        rate = row["failed"] / row["finished"]
        if rate <= max_rate:
            continue
        alerts.append(QueueAlert(
            queue=row["queue"],
            metric=FAILURE_RATE,
            value=round(rate, 3),
            threshold=max_rate,
            summary=f"{row['failed']} of {row['finished']} jobs of queue {row['queue']} finished in the last "
            f"{window} minutes failed ({rate:.0%}, threshold {max_rate:.0%}).",
        ))
    return alerts


def send_queue_alerts(*, now=None):
    """Find queue alerts and enqueue one notification per alert and staff member.

    Return {"alerts": [...], "recipients": n, "enqueued": n}, where `enqueued` counts
    only notifications not already sent for the same queue, metric and hour.
    """
    now = now or timezone.now()
    alerts = find_queue_alerts(now=now)
    if not alerts:
        return {"alerts": [], "recipients": 0, "enqueued": 0}

    overview_url = settings.SITE_URL.rstrip("/") + reverse("admin:jobs_queueoverview_changelist")
    # Staff with operations alerts on, plus the accounts listed in STAFF_ALERT_EMAILS.
    recipients = sorted(user.id for user in operations_alert_recipients())
    if not recipients:
        logger.warning("%s queue alerts found but no active staff member receives operations alerts", len(alerts))
    enqueued = 0
    for alert in alerts:
        logger.warning("queue alert %s on %s: %s", alert.metric, alert.queue, alert.summary)
        data = {**asdict(alert), "overview_url": overview_url}
        period_key = operations_key(queue=alert.queue, metric=alert.metric, at=now)
        for user_id in recipients:
            result = notification_enqueue(user_id=user_id, kind=ALERT_KIND, period_key=period_key, data=data)
            enqueued += result.created

    logger.info("queue alerts: %s found, %s notifications enqueued for %s staff members",
                len(alerts), enqueued, len(recipients))
    return {"alerts": [asdict(alert) for alert in alerts], "recipients": len(recipients), "enqueued": enqueued}
