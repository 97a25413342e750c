"""Writes of the nightly maintenance: expired sessions, old meals and job history.

Each function does a bounded amount of work, at most `max_batches` batches of
`batch_size` rows, and reports in Outcome.more whether rows remain, so a job can hand
the rest to a follow-up job. Each batch commits on its own, so an error part way leaves
every finished batch done and the failed one untouched. With dry_run=True a function
counts everything a full run would change and changes nothing. Limits left as None are
read from the MAINTENANCE_* settings. The temporary folder is cleaned by
maintenance.tempfiles.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from meals.models import Meal
from nutricoach.jobs import retention

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """The counts and summary line of one bounded run, or of what a dry run would do."""

    counts: dict
    message: str
    more: bool = False
    notes: list = field(default_factory=list)


def batch_limits(batch_size=None, max_batches=None):
    """Return (batch_size, max_batches), defaulting to settings; raise ImproperlyConfigured below 1."""
    limits = {
        "MAINTENANCE_BATCH_SIZE": batch_size if batch_size is not None else settings.MAINTENANCE_BATCH_SIZE,
        "MAINTENANCE_BATCHES_PER_JOB": max_batches if max_batches is not None else settings.MAINTENANCE_BATCHES_PER_JOB,
    }
    for name, value in limits.items():
        if not isinstance(value, int) or value < 1:
            raise ImproperlyConfigured(f"{name} must be a whole number of at least 1, got {value!r}.")
    return limits["MAINTENANCE_BATCH_SIZE"], limits["MAINTENANCE_BATCHES_PER_JOB"]


def _keep_going(heartbeat):
    return heartbeat is None or heartbeat()


def sessions_clear_expired(*, now=None, batch_size=None, max_batches=None, dry_run=False, heartbeat=None):
    """Remove expired sessions from the configured session store.

    Database-backed stores (db, cached_db and subclasses) are cleared here in batches
    of sessions whose expire_date is before `now`, which is what their clear_expired()
    does in one statement. Any other store's SessionStore.clear_expired() is called
    once: the file store removes expired files itself, and the cache and signed-cookie
    stores have nothing to clear. `heartbeat()` runs after each batch; False stops.
    """
    batch_size, max_batches = batch_limits(batch_size, max_batches)
    now = now or timezone.now()
    engine = settings.SESSION_ENGINE
    store = import_module(engine).SessionStore

    if not issubclass(store, DatabaseSessionStore):
        if dry_run:
            note = f"{engine} reports no count; a run calls its SessionStore.clear_expired()"
            return Outcome({}, f"would clear expired sessions with {engine}", notes=[note])
        try:
            store.clear_expired()
        except NotImplementedError:
            logger.warning("session engine %s cannot clear expired sessions; nothing removed", engine)
            return Outcome({}, f"{engine} does not support clear_expired(); nothing removed")
        return Outcome({}, f"cleared expired sessions with {engine}")

    model = store.get_model_class()
    expired = model.objects.filter(expire_date__lt=now)
    if dry_run:
        count = expired.count()
        return Outcome({"sessions": count}, f"would delete {count} sessions that expired before {now.isoformat()}")

    deleted = 0
    for _ in range(max_batches):
        keys = list(expired.order_by().values_list("pk", flat=True)[:batch_size])
        if not keys:
            break
        # Re-checking expire_date keeps a session that was extended since the select.
        deleted += model.objects.filter(pk__in=keys, expire_date__lt=now).delete()[0]
        if not _keep_going(heartbeat):
            break
    more = expired.exists()
    return Outcome({"sessions": deleted}, f"deleted {deleted} sessions that expired before {now.isoformat()}", more)


def meals_to_archive(*, now, older_than):
    """Return the active meals eaten before now - older_than that the archive run would take.

    Meals restored from the archive keep their archived_at, so they are not archived
    again. The local_date bound only lets the database use the index on active meals
    by local date. No time zone is more than 14 hours ahead of UTC, so a meal's local
    date is at most one day after its UTC date and the bound drops no meal.
    """
    cutoff = now - older_than
    return Meal.objects.filter(
        archived=False,
        archived_at__isnull=True,
        local_date__lte=cutoff.astimezone(UTC).date() + timedelta(days=1),
        eaten_at__lt=cutoff,
    )


def meals_archive_old(*, now=None, older_than=None, batch_size=None, max_batches=None, dry_run=False, heartbeat=None):
    """Archive meals eaten before now - older_than (settings.MAINTENANCE_MEAL_ARCHIVE_AFTER_DAYS).

    Archiving sets Meal.archived and archived_at and leaves everything else alone: the
    food items stay attached to the meal and the daily summaries keep their totals.
    `heartbeat()` runs after each batch; False stops.
    """
    batch_size, max_batches = batch_limits(batch_size, max_batches)
    now = now or timezone.now()
    older_than = older_than or timedelta(days=settings.MAINTENANCE_MEAL_ARCHIVE_AFTER_DAYS)
    candidates = meals_to_archive(now=now, older_than=older_than)
    cutoff = (now - older_than).isoformat()

    if dry_run:
        count = candidates.count()
        return Outcome({"meals": count}, f"would archive {count} meals eaten before {cutoff}")

    archived = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(candidates.order_by().values_list("id", flat=True)[:batch_size])
            if not ids:
                break
            # Filtering the candidates again skips a meal changed since the select.
            # Archived meals still count in their daily summaries, so nothing is marked stale.
            archived += candidates.filter(id__in=ids).update(archived=True, archived_at=timezone.now())
        if not _keep_going(heartbeat):
            break
    more = candidates.exists()
    return Outcome({"meals": archived}, f"archived {archived} meals eaten before {cutoff}", more)


def job_history_prune(*, now=None, batch_size=None, max_batches=None, dry_run=False, heartbeat=None):
    """Delete finished jobs and Django-Q2 task rows past settings.JOB_RETENTION.

    nutricoach.jobs.retention.prune does the deleting; this bounds it to
    batch_size * max_batches rows. `heartbeat()` runs once, after the prune.
    """
    batch_size, max_batches = batch_limits(batch_size, max_batches)
    max_rows = batch_size * max_batches

    counts = retention.prune(now=now, dry_run=dry_run, max_rows=None if dry_run else max_rows, batch_size=batch_size)

    total = sum(counts.values())
    verb = "would delete" if dry_run else "deleted"
    message = f"{verb} {total} rows of job history: " + ", ".join(f"{count} {kind}" for kind, count in counts.items())
    if not dry_run:
        _keep_going(heartbeat)
    # Reaching the bound exactly may leave nothing behind; the follow-up then finds nothing.
    return Outcome(counts, message, more=not dry_run and total >= max_rows)
