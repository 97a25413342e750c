"""The job handlers known to this process, registered with @job_task."""

from dataclasses import dataclass

from django.conf import settings

from nutricoach.jobs import backoff as backoff_policies


@dataclass(frozen=True)
class TaskSpec:
    name: str
    func: object
    queue: str
    attempts: int
    backoff: backoff_policies.Backoff
    priority: int
    on_dead_letter: object = None


_tasks = {}


class UnknownTaskError(LookupError):
    """No handler is registered under this task name."""


def job_task(
    name,
    *,
    queue,
    attempts=backoff_policies.DEFAULT_ATTEMPTS,
    backoff=backoff_policies.DEFAULT,
    priority=0,
    on_dead_letter=None,
):
    """Register a function as the handler of task `name`; it is called as func(ctx, **payload).

    `on_dead_letter(job, error)` runs when the job is dead-lettered, whichever way: a
    terminal error, the last attempt failing, or the last attempt's worker dying. It
    runs at least once, not exactly once: the dispatcher runs it again for a dead
    letter whose process died before recording that the hook ran, so it must be
    idempotent.
    """
    if queue not in settings.JOB_QUEUES:
        raise ValueError(f"Task {name!r} names queue {queue!r}, which is not in settings.JOB_QUEUES.")

    def register(func):
        existing = _tasks.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"Task name {name!r} is already registered for {existing.func.__qualname__}.")
        _tasks[name] = TaskSpec(name, func, queue, attempts, backoff, priority, on_dead_letter)
        return func

    return register


def get_task(name):
    try:
        return _tasks[name]
    except KeyError:
        raise UnknownTaskError(f"No job handler is registered as {name!r}; is its tasks module imported?") from None


def registered_tasks():
    return dict(_tasks)
