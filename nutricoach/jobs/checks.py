"""System checks for queue settings that Django-Q2 accepts but runs wrongly."""

import math

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_job_queues(app_configs, **kwargs):
    errors = []
    clusters = settings.Q_CLUSTER.get("ALT_CLUSTERS", {})
    schedulers = [name for name, cluster in clusters.items() if cluster.get("scheduler", True)]

    for name, queue in settings.JOB_QUEUES.items():
        cluster = clusters.get(name)
        if cluster is None:
            errors.append(Error(
                f"Queue {name!r} has no Django-Q2 cluster, so its jobs would wait forever.",
                hint=f"Add {name!r} to Q_CLUSTER['ALT_CLUSTERS'].",
                id="jobs.E001",
            ))
            continue
        timeout = cluster.get("timeout") or 0
        workers = cluster.get("workers") or 1
        queue_limit = cluster.get("queue_limit") or workers**2
        # A task pulled ahead waits for every task queued before it in its worker pool.
        longest_wait = math.ceil(queue_limit / workers) * timeout
        retry = cluster.get("retry", 60)
        if timeout and retry <= timeout + longest_wait:
            errors.append(Error(
                f"Cluster {name!r} has retry={retry}s, not above timeout {timeout}s plus the longest "
                f"queue wait {longest_wait}s, so the broker would redeliver tasks still running.",
                hint=f"Set retry above {timeout + longest_wait} seconds.",
                id="jobs.E002",
            ))
        if queue.get("rate_limit"):
            if queue.get("rate_window", 60) <= 0:
                errors.append(Error(
                    f"Queue {name!r} has a rate limit with a window of {queue.get('rate_window')} s.",
                    hint="Set a positive rate_window in seconds.",
                    id="jobs.E003",
                ))
            if settings.DATABASE_IS_SQLITE and settings.REDIS_URL:
                errors.append(Warning(
                    f"Queue {name!r} is rate limited through SQLite, which only processes on this host share; "
                    "workers on other hosts would each get the whole limit.",
                    hint="Use PostgreSQL (DATABASE_URL) when workers run on several hosts.",
                    id="jobs.W001",
                ))

    if len(schedulers) != 1:
        errors.append(Error(
            f"{len(schedulers)} clusters run the Django-Q2 scheduler ({', '.join(schedulers) or 'none'}); "
            "exactly one must, or schedules fire twice or never (several schedulers on SQLite also lock the database).",
            hint="Set 'scheduler': True on one entry of Q_CLUSTER['ALT_CLUSTERS'] and False on the others.",
            id="jobs.E004",
        ))
    if getattr(settings, "SECRET_KEY_FALLBACKS", None):
        errors.append(Warning(
            "SECRET_KEY_FALLBACKS is set, but Django-Q2 signs tasks with SECRET_KEY only: tasks queued "
            "before a key rotation are dropped.",
            hint="Let the queues drain before rotating SECRET_KEY; the dispatcher resends wake-ups for waiting jobs.",
            id="jobs.W002",
        ))
    return errors
