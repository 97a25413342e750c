"""Wake-ups: the only thing the job runtime sends through the Django-Q2 broker.

A wake-up carries a queue name, never a job: the worker that receives it claims the
next due job of that queue from the database. Wake-ups are not saved as Q2 results,
because one monitor process saving every result caps throughput near 70 tasks/s.
"""

import logging
import threading

from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

WAKE_FUNCTION = "nutricoach.jobs.runner.wake"

_brokers = {}
_brokers_lock = threading.Lock()


def _broker(queue):
    # One broker per queue and process: without it each push opens a Redis connection.
    with _brokers_lock:
        broker = _brokers.get(queue)
        if broker is None:
            broker = _brokers[queue] = get_broker(queue)
        return broker


def push(queue, count=1):
    """Send `count` wake-ups to the cluster of `queue`; log and swallow broker errors.

    A wake-up lost here is re-sent by the dispatcher, so a broker outage delays jobs
    without failing the request that enqueued them.
    """
    for _ in range(count):
        try:
            async_task(WAKE_FUNCTION, queue, cluster=queue, save=False, broker=_broker(queue))
        except Exception:
            logger.warning("wake-up for queue %s not sent; the dispatcher will resend it", queue, exc_info=True)
            with _brokers_lock:
                _brokers.pop(queue, None)
            return


def push_on_commit(queue, count=1):
    transaction.on_commit(lambda: push(queue, count))
