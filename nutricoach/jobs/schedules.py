"""Cron schedules: declared once in code, registered as Django-Q2 schedules, fired as jobs.

Every schedule runs on the scheduler cluster (settings.JOB_SCHEDULER_QUEUE), where it
calls fire(), which enqueues the declared job on its own queue with an idempotency key
made of the schedule name and the tick it was due at. A tick fired twice (two
schedulers, a redelivered task) therefore makes one job. Cron expressions are read in
settings.TIME_ZONE (UTC unless set). Missed ticks are not caught up (Q2 catch_up is
off): each periodic job looks back far enough to cover downtime itself.
"""

import logging
from dataclasses import dataclass, field

from croniter import croniter
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_q.models import Schedule

from nutricoach.jobs import registry
from nutricoach.jobs.services import enqueue

logger = logging.getLogger(__name__)

NAME_PREFIX = "nutricoach:"
FIRE_FUNCTION = "nutricoach.jobs.schedules.fire"


@dataclass(frozen=True)
class PeriodicJob:
    """A job enqueued on a cron schedule; `timeout` is seconds of run time allowed."""

    name: str
    cron: str
    task: str
    queue: str
    timeout: int
    payload: dict = field(default_factory=dict)


def declared():
    """Return the periodic jobs listed by settings.PERIODIC_JOBS, by name."""
    jobs = import_string(settings.PERIODIC_JOBS)
    by_name = {}
    for job in jobs:
        if job.name in by_name:
            raise ValueError(f"Periodic job name {job.name!r} is declared twice.")
        by_name[job.name] = job
    return by_name


def validate(job):
    """Raise ValueError if a declaration could break the scheduler pass."""
    if not croniter.is_valid(job.cron):
        raise ValueError(f"Periodic job {job.name!r} has an invalid cron expression {job.cron!r}.")
    if job.queue not in settings.JOB_QUEUES:
        raise ValueError(f"Periodic job {job.name!r} names unknown queue {job.queue!r}.")
    spec = registry.get_task(job.task)
    if spec.queue != job.queue:
        raise ValueError(f"Periodic job {job.name!r} puts task {job.task!r} on {job.queue!r}, not its queue {spec.queue!r}.")
    if job.timeout > settings.JOB_QUEUES[job.queue]["timeout"]:
        raise ValueError(
            f"Periodic job {job.name!r} needs {job.timeout}s, more than queue {job.queue!r} allows "
            f"({settings.JOB_QUEUES[job.queue]['timeout']}s)."
        )


@transaction.atomic
def register():
    """Create, update and remove Django-Q2 schedules to match the declarations.

    Return {"created": [...], "updated": [...], "removed": [...], "unchanged": [...]}.
    """
    jobs = declared()
    for job in jobs.values():
        validate(job)

    report = {"created": [], "updated": [], "removed": [], "unchanged": []}
    existing = {schedule.name: schedule for schedule in Schedule.objects.filter(name__startswith=NAME_PREFIX)}
    for job in jobs.values():
        name = NAME_PREFIX + job.name
        wanted = {
            "func": FIRE_FUNCTION,
            "args": repr((job.name,)),
            "kwargs": "{'q_options': {'save': False}}",
            "schedule_type": Schedule.CRON,
            "cron": job.cron,
            "repeats": -1,
            "cluster": settings.JOB_SCHEDULER_QUEUE,
            "intended_date_kwarg": "scheduled_for",
        }
        schedule = existing.pop(name, None)
        if schedule is None:
            Schedule.objects.create(name=name, **wanted)
            report["created"].append(job.name)
        elif any(getattr(schedule, key) != value for key, value in wanted.items()):
            cron_changed = schedule.cron != job.cron
            for key, value in wanted.items():
                setattr(schedule, key, value)
            if cron_changed:
                schedule.next_run = schedule.calculate_next_run()
            schedule.save()
            report["updated"].append(job.name)
        else:
            report["unchanged"].append(job.name)
    for name, schedule in existing.items():
        schedule.delete()
        report["removed"].append(name.removeprefix(NAME_PREFIX))
    return report


def fire(name, scheduled_for=None, **kwargs):
    """Enqueue the periodic job `name` for the tick due at `scheduled_for` (ISO 8601)."""
    job = declared().get(name)
    if job is None:
        logger.error("schedule %s fired but is no longer declared; run register_schedules", name)
        return None
    payload = {**job.payload}
    if scheduled_for:
        payload["scheduled_for"] = scheduled_for
    result = enqueue(
        job.task, payload, queue=job.queue, idempotency_key=f"schedule:{job.name}@{scheduled_for}"
    )
    logger.info("schedule %s fired for %s: job %s%s", name, scheduled_for, result.job.id,
                "" if result.created else " (already enqueued for this tick)")
    return str(result.job.id)
