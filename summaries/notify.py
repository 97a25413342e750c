"""Enqueue many notifications in one statement.

`notifications.services.notification_enqueue` writes one job per call, which costs
several queries per user: thousands of goal alerts from one nightly batch would
dominate the batch. This writes the same job rows (same task, queue, payload and
idempotency key) with one bulk insert that skips keys already present.
"""

import logging

from django.conf import settings
from django.utils import timezone

from notifications.services import SEND_TASK
from nutricoach.jobs import registry, wakeups
from nutricoach.jobs.models import Job, JobState

logger = logging.getLogger(__name__)

QUEUE = "notifications"
INSERT_BATCH_SIZE = 1000


def idempotency_key(user_id, kind, period_key):
    # NOTE: must equal the key notification_enqueue builds, so either path enqueues a
    # (user, kind, period) once; tests/summaries/test_notifications.py checks this.
    return f"notify:{user_id}:{kind}:{period_key}"


def notifications_enqueue_many(*, kind, items):
    """Enqueue `kind` for each (user_id, period_key, data) in `items`, skipping existing keys.

    Return how many jobs were new. Wake-ups go out on commit.
    """
    keyed = {idempotency_key(user_id, kind, period_key): (user_id, period_key, data) for user_id, period_key, data in items}
    existing = set(Job.objects.filter(idempotency_key__in=list(keyed)).values_list("idempotency_key", flat=True))
    new = {key: item for key, item in keyed.items() if key not in existing}
    if not new:
        return 0
    spec = registry.get_task(SEND_TASK)
    now = timezone.now()

    jobs = [
        Job(
            queue=QUEUE,
            task=SEND_TASK,
            payload={"user_id": user_id, "kind": kind, "period_key": period_key, "data": data},
            state=JobState.WAITING,
            priority=spec.priority,
            max_attempts=spec.attempts,
            backoff=spec.backoff.to_dict(),
            run_at=now,
            idempotency_key=key,
            wakeup_sent_at=now,
        )
        for key, (user_id, period_key, data) in new.items()
    ]
    # A concurrent run may insert the same key after the check above; the unique key
    # makes the database skip it.
    Job.objects.bulk_create(jobs, ignore_conflicts=True, batch_size=INSERT_BATCH_SIZE)

    wakeups.push_on_commit(QUEUE, min(len(jobs), settings.JOB_QUEUES[QUEUE]["workers"]))
    logger.info("%s notifications enqueued: %d of %d requested", kind, len(jobs), len(keyed))
    return len(jobs)
