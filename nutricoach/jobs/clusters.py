"""Django-Q2 cluster status, as the clusters publish it to the cache every few seconds."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from django_q.humanhash import humanize
from django_q.status import Stat

from nutricoach.jobs.models import JobAttempt

logger = logging.getLogger(__name__)

# How far back to look for attempts that name a cluster's workers, to tell its queue.
QUEUE_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class ClusterStatus:
    cluster_id: str
    name: str
    host: str
    pid: int
    status: str
    workers: int
    queue: str
    started_at: object
    reported_at: object


def cluster_statuses():
    """Return the status of every running cluster, or an empty list if the cache fails.

    Django-Q2 1.11 does not publish which queue a cluster serves. The queue is read from
    the attempts its worker processes ran, so it is "" until one of them has run a job.
    """
    try:
        stats = Stat.get_all()
    except Exception:
        logger.warning("reading Django-Q2 cluster status from the cache failed", exc_info=True)
        return []

    worker_names = {}
    for stat in stats:
        for pid in [stat.pid, getattr(stat, "sentinel", 0), *stat.workers]:
            worker_names[f"{stat.host}:{pid}"] = stat.cluster_id
    queue_of_cluster = {}
    if worker_names:
        rows = (
            JobAttempt.objects.filter(worker__in=list(worker_names), started_at__gte=timezone.now() - QUEUE_LOOKBACK)
            .values_list("worker", "queue")
            .distinct()
        )
        for worker, queue in rows:
            queue_of_cluster.setdefault(worker_names[worker], queue)

    statuses = []
    for stat in stats:
        statuses.append(ClusterStatus(
            cluster_id=str(stat.cluster_id),
            name=humanize(stat.cluster_id.hex),
            host=stat.host,
            pid=stat.pid,
            status=str(stat.status),
            workers=len(stat.workers),
            queue=queue_of_cluster.get(stat.cluster_id, ""),
            started_at=stat.tob,
            reported_at=stat.timestamp,
        ))
    return sorted(statuses, key=lambda status: (status.queue, status.host, status.pid))
