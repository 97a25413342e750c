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

# Both claims end with these CTEs: mark the jobs selected as `next` active, and open an
# attempt for each.
CLAIM_NEXT = f"""claimed AS (
    UPDATE {JOBS} AS job
    SET state = 'active', attempts_made = job.attempts_made + 1, started_at = %(now)s,
        lease_expires_at = %(lease)s, worker = %(worker)s, updated_at = %(now)s
    FROM next WHERE job.id = next.id
    RETURNING job.*
), attempt AS (
    INSERT INTO {ATTEMPTS} (job_id, queue, number, worker, started_at, outcome, error, rate_limited)
    SELECT id, queue, attempts_made, worker, started_at, '', '', rate_limited FROM claimed
)"""

CLAIM_SQL = f"""
WITH {RELAXED}, next AS (
    SELECT id FROM {JOBS}
    WHERE queue = %(queue)s AND state = 'waiting' AND run_at <= %(now)s
      AND (%(any_job)s OR NOT rate_limited)
      AND NOT EXISTS (SELECT 1 FROM {QUEUES} WHERE name = %(queue)s AND paused)
    ORDER BY priority DESC, run_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), {CLAIM_NEXT}
SELECT claimed.* FROM claimed, relaxed
"""

COMPLETE_SQL = f"""
WITH {RELAXED}, done AS (
    UPDATE {JOBS}
    SET state = 'completed', progress = 100, result = %(result)s::jsonb, error = '', error_kind = '',
        finished_at = %(now)s, lease_expires_at = NULL, updated_at = %(now)s
    WHERE id = %(id)s AND state = 'active' AND attempts_made = %(attempt)s AND worker = %(worker)s
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
    WHERE id = %(id)s AND state = 'active' AND attempts_made = %(attempt)s AND worker = %(worker)s
    RETURNING id
), logged AS (
    INSERT INTO {LOGS} (job_id, created_at, level, message)
    SELECT id, %(now)s, 'info', %(message)s FROM moved WHERE %(message)s::text IS NOT NULL
)
SELECT count(*) FROM moved, relaxed
"""


# A worker's batch: store the results of the jobs it ran, hand back the jobs it claimed
# but will not start, and claim up to %(limit)s more, all in one statement. Claiming a
# batch costs little more than claiming one job, and each statement has a fixed cost of
# about half a millisecond here, so short jobs gain most of their speed from this.
# A job marked claim_alone only ever leaves in a batch of its own (see recover_stalled).
BATCH_SQL = f"""
WITH {RELAXED}, ran (id, attempt, worker, result, started_at, finished_at) AS (
    SELECT * FROM unnest(
        %(ran_ids)s::uuid[], %(ran_attempts)s::smallint[], %(ran_workers)s::text[], %(ran_results)s::text[],
        %(ran_started)s::timestamptz[], %(ran_finished)s::timestamptz[]
    )
), done AS (
    UPDATE {JOBS} AS job
    SET state = 'completed', progress = 100, result = ran.result::jsonb, error = '', error_kind = '',
        started_at = ran.started_at, finished_at = ran.finished_at, lease_expires_at = NULL,
        updated_at = ran.finished_at
    FROM ran
    WHERE job.id = ran.id AND job.state = 'active' AND job.attempts_made = ran.attempt AND job.worker = ran.worker
    RETURNING job.id, ran.attempt, ran.started_at, ran.finished_at
), closed AS (
    UPDATE {ATTEMPTS} AS attempt
    SET started_at = done.started_at, finished_at = done.finished_at, outcome = 'completed'
    FROM done WHERE attempt.job_id = done.id AND attempt.number = done.attempt
), unstarted (id, attempt, worker) AS (
    SELECT * FROM unnest(%(unstarted_ids)s::uuid[], %(unstarted_attempts)s::smallint[], %(unstarted_workers)s::text[])
), handed_back AS (
    UPDATE {JOBS} AS job
    SET state = 'waiting', attempts_made = job.attempts_made - 1, lease_expires_at = NULL, worker = '',
        wakeup_sent_at = %(now)s, updated_at = %(now)s
    FROM unstarted
    WHERE job.id = unstarted.id AND job.state = 'active' AND job.attempts_made = unstarted.attempt
      AND job.worker = unstarted.worker
    RETURNING job.id, unstarted.attempt
), unattempted AS (
    DELETE FROM {ATTEMPTS} AS attempt USING handed_back
    WHERE attempt.job_id = handed_back.id AND attempt.number = handed_back.attempt
), candidates AS (
    SELECT id, claim_alone, priority, run_at FROM {JOBS}
    WHERE %(limit)s > 0 AND queue = %(queue)s AND state = 'waiting' AND run_at <= %(now)s
      AND (%(any_job)s OR NOT rate_limited)
      AND NOT EXISTS (SELECT 1 FROM {QUEUES} WHERE name = %(queue)s AND paused)
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, claim_alone, row_number() OVER (ORDER BY priority DESC, run_at, id) AS position FROM candidates
), next AS (
    SELECT id FROM ranked
    WHERE position = 1
       OR position < (SELECT COALESCE(min(position), %(limit)s + 1) FROM ranked WHERE claim_alone)
), {CLAIM_NEXT}
SELECT claimed.*, (SELECT array_agg(id) FROM done) AS stored_ids
FROM relaxed LEFT JOIN claimed ON TRUE
ORDER BY claimed.priority DESC, claimed.run_at, claimed.id
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


def run_batch(queue, *, ran, unstarted, limit, now, lease_expires_at, worker, include_rate_limited=True):
    """Store finished jobs, hand back unstarted ones and claim up to `limit` more, at once.

    `ran` contains (job, result as JSON text, started, finished) for each job that ran
    successfully. `unstarted` contains the claimed jobs this worker will not start; they
    go back to waiting without spending an attempt.

    Return (claimed jobs in the order to run them, ids of the jobs whose results were
    stored). A job missing from the ids had lost its lease, so its result was dropped.
    """
    params = {
        "ran_ids": [job.id for job, _, _, _ in ran],
        "ran_attempts": [job.attempts_made for job, _, _, _ in ran],
        "ran_workers": [job.worker for job, _, _, _ in ran],
        "ran_results": [result for _, result, _, _ in ran],
        "ran_started": [started for _, _, started, _ in ran],
        "ran_finished": [finished for _, _, _, finished in ran],
        "unstarted_ids": [job.id for job in unstarted],
        "unstarted_attempts": [job.attempts_made for job in unstarted],
        "unstarted_workers": [job.worker for job in unstarted],
        "queue": queue, "limit": limit, "now": now, "lease": lease_expires_at, "worker": worker,
        "any_job": include_rate_limited, "commit_mode": _commit_mode(),
    }
    with _prepared_cursor() as cursor:
        cursor.execute(BATCH_SQL, params, prepare=True)
        rows = cursor.fetchall()
        names = [column.name for column in cursor.description]
    stored = set(rows[0][-1] or ()) if rows else set()
    claimed = [_job_from_columns(dict(zip(names, row))) for row in rows if row[0] is not None]
    return claimed, stored


def complete(job, result, *, now):
    """Store a result in one statement; return False if the attempt lost its lease."""
    params = {
        "id": job.id, "attempt": job.attempts_made, "worker": job.worker, "result": json.dumps(result), "now": now,
        "commit_mode": _commit_mode(),
    }
    with _prepared_cursor() as cursor:
        cursor.execute(COMPLETE_SQL, params, prepare=True)
        return cursor.fetchone()[0] == 1


def record_progress(job, value, message, *, now):
    """Set progress and add a log line; return False if the attempt lost its lease."""
    params = {
        "id": job.id, "attempt": job.attempts_made, "worker": job.worker, "progress": value, "message": message,
        "now": now, "commit_mode": _commit_mode(),
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
