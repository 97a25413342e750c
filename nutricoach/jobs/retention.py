"""How long finished jobs are kept (settings.JOB_RETENTION), and the pruning that applies it.

Completed jobs stay for `completed_hours` and at most `completed_per_task` per task
name; failed and cancelled jobs for `failed_days`; dead letters until staff replay or
discard them. Django-Q2's own success and failure rows are pruned on the same clock,
because Q2 never deletes failures itself.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django_q.models import Failure, Success

from nutricoach.jobs.models import Job, JobState

logger = logging.getLogger(__name__)

# Rows deleted per statement, so one prune never holds long locks.
BATCH_SIZE = 5000


def _delete_in_batches(queryset, *, limit=None, batch_size=BATCH_SIZE):
    """Delete the queryset's rows, batch_size at a time and at most `limit` in all; return how many."""
    total = 0
    while limit is None or total < limit:
        size = batch_size if limit is None else min(batch_size, limit - total)
        ids = list(queryset.order_by().values_list("pk", flat=True)[:size])
        if not ids:
            break
        total += queryset.model.objects.filter(pk__in=ids).delete()[1].get(queryset.model._meta.label, 0)
    return total


def _delete_jobs_by_id(ids, *, batch_size=BATCH_SIZE):
    # Chunks keep each statement under SQLite's limit on query parameters.
    total = 0
    for start in range(0, len(ids), batch_size):
        total += Job.objects.filter(id__in=ids[start:start + batch_size]).delete()[1].get(Job._meta.label, 0)
    return total


def prune(*, now=None, log=None, dry_run=False, max_rows=None, batch_size=BATCH_SIZE):
    """Delete jobs and Q2 task rows past retention; return the counts (would-be counts on dry_run).

    With `max_rows`, stop after deleting that many rows in all, so a caller that got
    exactly max_rows back should prune again. A dry run counts every row, unbounded.
    """
    now = now or timezone.now()
    policy = settings.JOB_RETENTION
    completed_cutoff = now - timedelta(hours=policy["completed_hours"])
    failed_cutoff = now - timedelta(days=policy["failed_days"])

    old_completed = Job.objects.filter(state=JobState.COMPLETED, finished_at__lt=completed_cutoff)
    ranked = (
        Job.objects.filter(state=JobState.COMPLETED, finished_at__gte=completed_cutoff)
        .annotate(rank=Window(RowNumber(), partition_by=[F("task")], order_by=F("finished_at").desc()))
        .filter(rank__gt=policy["completed_per_task"])
    )
    over_count_ids = ranked.values_list("id", flat=True)
    if not dry_run and max_rows is not None:
        over_count_ids = over_count_ids[:max_rows]
    over_count_ids = list(over_count_ids)
    old_failed = Job.objects.filter(
        state__in=[JobState.FAILED, JobState.CANCELLED], finished_at__lt=failed_cutoff
    ).exclude(state=JobState.FAILED, dead_lettered_at__isnull=False)
    q2_success = Success.objects.filter(stopped__lt=completed_cutoff)
    q2_failure = Failure.objects.filter(stopped__lt=failed_cutoff)

    if dry_run:
        counts = {
            "completed": old_completed.count() + len(over_count_ids),
            "failed": old_failed.count(),
            "q2_success": q2_success.count(),
            "q2_failure": q2_failure.count(),
        }
    else:
        counts = {"completed": _delete_jobs_by_id(over_count_ids, batch_size=batch_size)}
        budget = None if max_rows is None else max_rows - counts["completed"]
        for key, queryset in [
            ("completed", old_completed),
            ("failed", old_failed),
            ("q2_success", q2_success),
            ("q2_failure", q2_failure),
        ]:
            deleted = 0 if budget == 0 else _delete_in_batches(queryset, limit=budget, batch_size=batch_size)
            counts[key] = counts.get(key, 0) + deleted
            if budget is not None:
                budget -= deleted
    message = ("would delete" if dry_run else "deleted") + " " + ", ".join(f"{v} {k}" for k, v in counts.items())
    logger.info("job history pruned: %s", message)
    if log:
        log(message)
    return counts
