"""The Prometheus endpoint: queue counts, ages, failures and dispatcher heartbeats.

Every value is read from the database (and the clusters' status from the cache) at
scrape time, so every web process serves the values of the whole system. Access needs
`Authorization: Bearer <settings.METRICS_TOKEN>` or a logged-in staff session.
"""

import hmac
import logging
import math
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from nutricoach.jobs import clusters, selectors
from nutricoach.jobs.charts import FAILED_OUTCOMES
from nutricoach.jobs.models import DispatcherHeartbeat, Job, JobAttempt, JobState

logger = logging.getLogger(__name__)

COUNTED_STATES = ["waiting", "active", "delayed", "completed", "failed", "cancelled"]


class JobCollector:
    """The job runtime's gauges, read anew on every scrape."""

    def collect(self):
        now = timezone.now()
        yield from self._queue_families()
        yield from self._failure_families(now)
        yield from self._dispatcher_families(now)
        yield self._cluster_family()

    def _queue_families(self):
        jobs = GaugeMetricFamily("nutricoach_queue_jobs", "Jobs in the table by queue and state.", labels=["queue", "state"])
        dead_letters = GaugeMetricFamily(
            "nutricoach_queue_dead_letters", "Failed jobs kept for replay (a subset of state failed).", labels=["queue"]
        )
        paused = GaugeMetricFamily("nutricoach_queue_paused", "1 if the queue is paused, else 0.", labels=["queue"])
        oldest = GaugeMetricFamily(
            "nutricoach_queue_oldest_waiting_age_seconds",
            "Seconds since the oldest waiting job became due; 0 when none is waiting.",
            labels=["queue"],
        )
        for queue in selectors.queue_metrics():
            for state in COUNTED_STATES:
                jobs.add_metric([queue.name, state], getattr(queue, state))
            dead_letters.add_metric([queue.name], queue.dead_lettered)
            paused.add_metric([queue.name], 1 if queue.paused else 0)
            oldest.add_metric([queue.name], queue.oldest_waiting_age_seconds or 0.0)
        return [jobs, dead_letters, paused, oldest]

    def _failure_families(self, now):
        window_minutes = settings.JOB_ALERTS["failure_window_minutes"]
        failed_jobs = GaugeMetricFamily(
            "nutricoach_queue_failed_jobs", "Failed jobs in the table by queue and error kind.", labels=["queue", "error_kind"]
        )
        rows = Job.objects.filter(state=JobState.FAILED).values("queue", "error_kind").annotate(count=Count("id")).order_by()
        for row in rows:
            failed_jobs.add_metric([row["queue"], row["error_kind"] or "unknown"], row["count"])

        failed_attempts = GaugeMetricFamily(
            "nutricoach_queue_failed_attempts_recent",
            f"Attempts that failed in the last {window_minutes} minutes, by queue and error kind.",
            labels=["queue", "error_kind"],
        )
        rows = (
            JobAttempt.objects.filter(finished_at__gte=now - timedelta(minutes=window_minutes), outcome__in=FAILED_OUTCOMES)
            .values("queue", "outcome")
            .annotate(count=Count("id"))
            .order_by()
        )
        for row in rows:
            failed_attempts.add_metric([row["queue"], row["outcome"]], row["count"])
        return [failed_jobs, failed_attempts]

    def _dispatcher_families(self, now):
        ages = GaugeMetricFamily(
            "nutricoach_dispatcher_heartbeat_age_seconds", "Seconds since each dispatcher finished a pass.",
            labels=["dispatcher"],
        )
        freshest = math.inf
        for beat in DispatcherHeartbeat.objects.all():
            age = max(0.0, (now - beat.beat_at).total_seconds())
            ages.add_metric([beat.name], age)
            freshest = min(freshest, age)
        newest = GaugeMetricFamily(
            "nutricoach_dispatcher_newest_heartbeat_age_seconds",
            "Seconds since any dispatcher finished a pass; +Inf if none ever did.",
            value=freshest,
        )
        return [ages, newest]

    def _cluster_family(self):
        workers = GaugeMetricFamily(
            "nutricoach_cluster_workers", "Worker processes of each running Django-Q2 cluster.",
            labels=["cluster", "host", "queue"],
        )
        for status in clusters.cluster_statuses():
            workers.add_metric([status.name, status.host, status.queue], status.workers)
        return workers


def _bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _unauthorized(message):
    response = HttpResponse(message + "\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics_view(request):
    """Serve the gauges in Prometheus text format to the token holder or staff."""
    token = _bearer_token(request)
    if token is not None:
        expected = settings.METRICS_TOKEN
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return _unauthorized("Invalid metrics token: send the value of METRICS_TOKEN as the bearer token.")
    elif not request.user.is_authenticated:
        return _unauthorized("Authentication required: send 'Authorization: Bearer <METRICS_TOKEN>' or log in as staff.")
    elif not (request.user.is_active and request.user.is_staff):
        return HttpResponse("Metrics are for staff only.\n", status=403, content_type="text/plain; charset=utf-8")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobCollector())
    try:
        body = generate_latest(registry)
    except DatabaseError:
        logger.warning("metrics scrape failed: the database is unavailable", exc_info=True)
        return HttpResponse("The database is unavailable.\n", status=503, content_type="text/plain; charset=utf-8")
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
