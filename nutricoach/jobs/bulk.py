"""Set-based enqueue on PostgreSQL: an INSERT ... SELECT of jobs inside the caller's SQL.

A batch that derives its jobs from rows it has just written can insert them in the
same statement, as a data-modifying CTE. No row then travels to Python and back: in
bench/summaries_nightly.py (PostgreSQL 15) a job cost about 18 us this way and about
130 us through enqueue_many(), most of it building Job objects and parameters.

The rows get the same values that enqueue_many() gives them: the task's queue,
priority, attempts and backoff from its registration, state waiting, run_at and
wakeup_sent_at set to `now`, and the model default for every other column. A request whose idempotency key an existing job has
is skipped by ON CONFLICT DO NOTHING.

The caller sends the wake-ups once the transaction commits, with push_wakeups_on_commit(),
because only it learns how many rows the statement inserted.
"""

from django.db import connection
from django.db.models import DateTimeField

from nutricoach.jobs import wakeups
from nutricoach.jobs.models import Job, JobState
from nutricoach.jobs.services import EnqueueError, queue_config, task_and_queue

# Columns the request relation supplies, one row per job.
REQUEST_COLUMNS = ("payload", "idempotency_key", "owner_id")


def insert_jobs_sql(task, *, requests, now, requests_params=(), queue=None):
    """Return (sql, params) of an INSERT of one due job of `task` per row of `requests`.

    `requests` names a relation (a CTE or a parenthesised subquery with an alias) with
    the columns payload (jsonb, a JSON object), idempotency_key (text, or NULL for none)
    and owner_id (a user id or NULL). The statement returns the id of every new job, so
    the caller can count them. It uses positional %s parameters; `requests_params` are
    those of `requests`. Raise EnqueueError for an unknown task or queue, as
    enqueue_many() does, and on any database other than PostgreSQL, whose
    gen_random_uuid() and jsonb it needs.
    """
    if connection.vendor != "postgresql":
        raise EnqueueError(f"Set-based enqueue needs PostgreSQL; on {connection.vendor} use enqueue_many().")
    spec, queue = task_and_queue(task, queue)

    job_values = {
        "queue": queue,
        "task": task,
        "state": JobState.WAITING.value,
        "priority": spec.priority,
        "max_attempts": spec.attempts,
        "backoff": spec.backoff.to_dict(),
        "run_at": now,
        "wakeup_sent_at": now,
    }
    columns, expressions, params = [], [], []
    for field in Job._meta.concrete_fields:
        column = field.column
        columns.append(connection.ops.quote_name(column))
        if field.primary_key:
            # Version 4 UUIDs, as uuid.uuid4() makes for enqueue_many().
            expressions.append("gen_random_uuid()")
            continue
        if column in REQUEST_COLUMNS:
            cast = "::jsonb" if column == "payload" else ""
            expressions.append(f"requests.{column}{cast}")
            continue
        if column in job_values:
            value = job_values[column]
        elif isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add):
            value = now
        else:
            value = field.get_default()
        expressions.append("%s")
        params.append(field.get_db_prep_save(value, connection))

    sql = (
        f"INSERT INTO {connection.ops.quote_name(Job._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(expressions)} FROM {requests} "
        f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
    )
    return sql, [*params, *requests_params]


def push_wakeups_on_commit(task, created, *, queue=None):
    """Wake the queue of `task` after commit, as enqueue_many() does for `created` new jobs.

    The queue gets one wake-up per new job, at most one per worker.
    """
    if not created:
        return
    _, queue = task_and_queue(task, queue)
    wakeups.push_on_commit(queue, min(created, queue_config(queue)["workers"]))
