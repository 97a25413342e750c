"""Single-statement claim, completion and progress for PostgreSQL.

The ORM versions in services.py take five to eight round trips per job; these take one
each. They implement the same rules: the ORM path stays the reference, and both are
covered by the same tests.

Their commits do not wait for the WAL flush, because each statement sets
synchronous_commit off for its own transaction. That wait was most of a short job's
cost on a disk with 1 ms flushes. A database crash can therefore lose the last claims,
completions and progress lines. A lost claim puts the job back to waiting, and a lost
completion leaves it active until its lease expires, so the job runs again, as
at-least-once delivery allows.
NOTE: other sessions see these commits before they are flushed, so a client may have
read "completed" for a job that a crash then sets back and runs again.
Enqueues and the handlers' own writes still commit durably, and a durable commit also
flushes every earlier one.
"""

import json
from contextlib import contextmanager

import psycopg
from django.db import connection

from nutricoach.jobs.models import Job, JobAttempt, JobLog, QueueState

JOBS = Job._meta.db_table
ATTEMPTS = JobAttempt._meta.db_table
LOGS = JobLog._meta.db_table
QUEUES = QueueState._meta.db_table

# Each statement sets synchronous_commit for its own transaction. The CTE must be
# referenced, or PostgreSQL does not evaluate it.
RELAXED = "relaxed AS (SELECT set_config('synchronous_commit', %(commit_mode)s, true) AS setting)"

CLAIM_SQL = f"""
WITH {RELAXED}, next AS (
    SELECT id FROM {JOBS}
    WHERE queue = %(queue)s AND state = 'waiting' AND run_at <= %(now)s
      AND (%(any_job)s OR NOT rate_limited)
      AND NOT EXISTS (SELECT 1 FROM {QUEUES} WHERE name = %(queue)s AND paused)
    ORDER BY priority DESC, run_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {JOBS} AS job
    SET state = 'active', attempts_made = job.attempts_made + 1, started_at = %(now)s,
        lease_expires_at = %(lease)s, worker = %(worker)s, updated_at = %(now)s
    FROM next WHERE job.id = next.id
    RETURNING job.*
), attempt AS (
    INSERT INTO {ATTEMPTS} (job_id, queue, number, worker, started_at, outcome, error, rate_limited)
    SELECT id, queue, attempts_made, worker, started_at, '', '', rate_limited FROM claimed
)
SELECT claimed.* FROM claimed, relaxed
"""

COMPLETE_SQL = f"""
WITH {RELAXED}, done AS (
    UPDATE {JOBS}
    SET state = 'completed', progress = 100, result = %(result)s::jsonb, error = '', error_kind = '',
        finished_at = %(now)s, lease_expires_at = NULL, updated_at = %(now)s
    WHERE id = %(id)s AND state = 'active' AND attempts_made = %(attempt)s
    RETURNING id
), closed AS (
    UPDATE {ATTEMPTS} SET finished_at = %(now)s, outcome = 'completed'
    WHERE job_id IN (SELECT id FROM done) AND number = %(attempt)s
    RETURNING id
)
SELECT count(*) FROM done, relaxed
"""

PROGRESS_SQL = f"""
WITH {RELAXED}, moved AS (
    UPDATE {JOBS} SET progress = %(progress)s, updated_at = %(now)s
    WHERE id = %(id)s AND state = 'active' AND attempts_made = %(attempt)s
    RETURNING id
), logged AS (
    INSERT INTO {LOGS} (job_id, created_at, level, message)
    SELECT id, %(now)s, 'info', %(message)s FROM moved WHERE %(message)s::text IS NOT NULL
)
SELECT count(*) FROM moved, relaxed
"""


def claim(queue, *, now, lease_expires_at, worker, include_rate_limited=True):
    """Claim the next due job in one statement, or return None.

    With include_rate_limited=False, jobs that count against the queue's rate limit are
    left for the locked ORM claim, which can count them.
    """
    params = {
        "queue": queue, "now": now, "lease": lease_expires_at, "worker": worker, "any_job": include_rate_limited,
        "commit_mode": _commit_mode(),
    }
    with _prepared_cursor() as cursor:
        cursor.execute(CLAIM_SQL, params, prepare=True)
        row = cursor.fetchone()
        if row is None:
            return None
        columns = dict(zip((column.name for column in cursor.description), row))
    return _job_from_columns(columns)


def complete(job, result, *, now):
    """Store a result in one statement; return False if the attempt lost its lease."""
    params = {
        "id": job.id, "attempt": job.attempts_made, "result": json.dumps(result), "now": now,
        "commit_mode": _commit_mode(),
    }
    with _prepared_cursor() as cursor:
        cursor.execute(COMPLETE_SQL, params, prepare=True)
        return cursor.fetchone()[0] == 1


def record_progress(job, value, message, *, now):
    """Set progress and add a log line; return False if the attempt lost its lease."""
    params = {
        "id": job.id, "attempt": job.attempts_made, "progress": value, "message": message, "now": now,
        "commit_mode": _commit_mode(),
    }
    with _prepared_cursor() as cursor:
        cursor.execute(PROGRESS_SQL, params, prepare=True)
        return cursor.fetchone()[0] == 1


def _job_from_columns(columns):
    # The converters Django's query compiler would apply, such as JSON text to objects.
    fields = Job._meta.concrete_fields
    values = []
    for field in fields:
        value = columns[field.column]
        if hasattr(field, "from_db_value"):
            value = field.from_db_value(value, None, connection)
        values.append(value)
    return Job.from_db(connection.alias, [field.attname for field in fields], values)


@contextmanager
def _prepared_cursor():
    """Yield a server-side-binding cursor on Django's connection, for prepared statements.

    Django's own cursors bind parameters on the client, so every call is planned anew;
    planning took about as long as running these statements.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _commit_mode():
    # Inside a caller's transaction the setting would cover the caller's writes too, and
    # those must stay durable.
    return "on" if connection.in_atomic_block else "off"
