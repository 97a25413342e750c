"""The dispatcher: wakes due delayed jobs, recovers stalled ones and lost wake-ups.

Several dispatchers may run at once: every change it makes is a conditional update,
so two of them never move the same job twice.
"""

import logging
import os
import socket
import time

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from nutricoach.jobs import selectors, services
from nutricoach.jobs.models import DispatcherHeartbeat

logger = logging.getLogger(__name__)

NAME = f"{socket.gethostname()}:{os.getpid()}"
# Seconds between the queue metrics lines in the dispatcher's log.
METRICS_LOG_INTERVAL = 60


def run_pass():
    """Do one round of dispatcher work and return what it did."""
    promoted = services.promote_due_delayed()
    stalled = services.recover_stalled()
    woken = services.resend_lost_wakeups()
    services.run_missed_dead_letter_hooks()
    DispatcherHeartbeat.objects.update_or_create(name=NAME, defaults={"beat_at": timezone.now()})
    if promoted or stalled or woken:
        logger.info("dispatcher pass: %s delayed jobs due, %s stalled, queues re-woken: %s",
                    promoted, stalled, ", ".join(woken) or "none")
    return {"promoted": promoted, "stalled": stalled, "woken": woken}


def log_queue_metrics():
    """Log one line per queue with its counts, for log-based monitoring."""
    for metrics in selectors.queue_metrics():
        logger.info(
            "queue %s: %s waiting, %s active, %s delayed, %s dead letters, oldest waiting %s s%s",
            metrics.name, metrics.waiting, metrics.active, metrics.delayed, metrics.dead_lettered,
            "-" if metrics.oldest_waiting_age_seconds is None else round(metrics.oldest_waiting_age_seconds),
            " (paused)" if metrics.paused else "",
        )


def run_forever(*, interval=0.5, stop=lambda: False):
    logger.info("dispatcher %s started, pass every %.1fs", NAME, interval)
    failures = 0
    metrics_logged = 0.0
    while not stop():
        started = time.monotonic()
        try:
            run_pass()
            if started - metrics_logged >= METRICS_LOG_INTERVAL:
                log_queue_metrics()
                metrics_logged = started
            if failures:
                logger.info("dispatcher %s recovered after %s failed passes", NAME, failures)
            failures = 0
        except DatabaseError:
            failures += 1
            # Log the first failure and then every 60th, so an outage does not flood the log.
            if failures == 1 or failures % 60 == 0:
                logger.warning("dispatcher pass failed (%s in a row); retrying", failures, exc_info=True)
            close_old_connections()
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    logger.info("dispatcher %s stopped", NAME)
