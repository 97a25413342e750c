"""Running a maintenance task under its lock, as a job or from a management command.

Every task holds the lock named after it while it works, so two runs of one task never
overlap: the second records that it skipped. A job does one bounded run and, when
rows remain, enqueues the same task again as a follow-up job. A command repeats bounded
runs until nothing remains.
"""

import logging
import os
import socket
from dataclasses import dataclass
from typing import Callable

from maintenance import locks
from maintenance.services import Outcome
from nutricoach.jobs.services import enqueue

logger = logging.getLogger(__name__)

# Follow-up jobs one scheduled run may chain. A chain this long means far more rows
# than a night's work; the rest waits for the next scheduled run.
MAX_FOLLOW_UPS = 100


@dataclass(frozen=True)
class MaintenanceTask:
    """A task name (also its lock name) and the bounded work it runs."""

    name: str
    work: Callable[..., Outcome]


class TaskLockedError(Exception):
    """Another run of the task holds its lock."""

    def __init__(self, task_name, holder):
        self.task_name = task_name
        self.holder = holder
        where = f"{holder.holder} until {holder.expires_at.isoformat()}" if holder else "another run"
        super().__init__(f"{task_name} is already running ({where}); try again once it finishes.")


def run_as_job(ctx, task, *, follow_up):
    """Run one bounded pass of `task` for a job and enqueue a follow-up when rows remain.

    `follow_up` is 0 for a scheduled run and counts up along its chain of follow-ups.
    Return the job result: counts and message, or skipped with the lock holder.
    """
    holder = f"job {ctx.job.id} attempt {ctx.attempt}"
    lock = locks.acquire(task.name, holder=holder)
    if lock is None:
        return _skipped(ctx, task)

    logger.info("maintenance task %s started (job %s, follow-up %s)", task.name, ctx.job.id, follow_up)
    try:
        outcome = task.work(dry_run=False, heartbeat=lambda: _heartbeat(ctx, lock))
    finally:
        lock.release()

    result = {"counts": outcome.counts, "message": outcome.message, "more": outcome.more, "notes": outcome.notes}
    for note in outcome.notes:
        ctx.log(note)
    ctx.log(outcome.message)
    if lock.lost:
        # Another run took the expired lock and carries on; a follow-up would race it.
        ctx.log("stopped early: the lock expired and another run took it over", level="warning")
        result["lock_lost"] = True
    elif outcome.more:
        result["follow_up_job"] = _enqueue_follow_up(ctx, task, follow_up)
    logger.info("maintenance task %s finished (job %s): %s", task.name, ctx.job.id, outcome.message)
    return result


def run_from_command(task, *, dry_run, write):
    """Run `task` until nothing remains (or count once on a dry run); return the outcomes.

    `write(line)` receives a line per pass. Raise TaskLockedError when another run holds
    the lock; a dry run takes no lock because it changes nothing.
    """
    if dry_run:
        outcome = task.work(dry_run=True, heartbeat=None)
        _write_outcome(write, outcome)
        return [outcome]

    holder = f"command on {socket.gethostname()}:{os.getpid()}"
    lock = locks.acquire(task.name, holder=holder)
    if lock is None:
        raise TaskLockedError(task.name, locks.current(task.name))
    outcomes = []
    try:
        while True:
            outcome = task.work(dry_run=False, heartbeat=lock.renew)
            outcomes.append(outcome)
            _write_outcome(write, outcome)
            if lock.lost or not outcome.more:
                break
    finally:
        lock.release()
    if lock.lost:
        raise TaskLockedError(task.name, locks.current(task.name))
    return outcomes


def _heartbeat(ctx, lock):
    ctx.extend_lease()
    return lock.renew()


def _skipped(ctx, task):
    holder = locks.current(task.name)
    held_by = holder.holder if holder else "a run that has just finished"
    message = f"skipped: {task.name} is already running ({held_by})"
    logger.warning("maintenance task %s skipped (job %s): already running (%s)", task.name, ctx.job.id, held_by)
    ctx.log(message, level="warning")
    return {
        "skipped": True,
        "reason": "already running",
        "held_by": held_by,
        "lock_expires_at": holder.expires_at.isoformat() if holder else None,
    }


def _enqueue_follow_up(ctx, task, follow_up):
    if follow_up >= MAX_FOLLOW_UPS:
        logger.warning(
            "maintenance task %s reached %s follow-up jobs; the next scheduled run continues", task.name, MAX_FOLLOW_UPS
        )
        ctx.log(f"rows remain but {MAX_FOLLOW_UPS} follow-up jobs ran; the next scheduled run continues",
                level="warning")
        return None
    # Keyed by this job, so a retried attempt of it does not enqueue a second follow-up.
    job = enqueue(
        task.name, {"follow_up": follow_up + 1}, idempotency_key=f"maintenance:{task.name}:after:{ctx.job.id}"
    ).job
    ctx.log(f"rows remain; follow-up job {job.id} continues")
    return str(job.id)


def _write_outcome(write, outcome):
    write(outcome.message + (" (more remain)" if outcome.more else ""))
    for note in outcome.notes:
        write(f"  {note}")
