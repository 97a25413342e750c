"""Single-statement claim and completion for PostgreSQL.

The ORM versions in services.py take five to eight round trips per job; these take one
each, which is most of a no-op job's cost. They implement the same rules: the
ORM path stays the reference, and both are covered by the same tests.
"""

import json

from django.db import connection

from django.db import transaction

from nutricoach.jobs.models import Job, JobAttempt, JobLog, QueueState

JOBS = Job._meta.db_table
ATTEMPTS = JobAttempt._meta.db_table
LOGS = JobLog._meta.db_table
QUEUES = QueueState._meta.db_table

CLAIM_SQL = f"""
WITH next AS (
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
SELECT * FROM claimed
"""

COMPLETE_SQL = f"""
WITH done AS (
    UPDATE {JOBS}
    SET state = 'completed', progress = 100, result = %(result)s::jsonb, error = '', error_kind = '',
        finished_at = %(now)s, lease_expires_at = NULL, updated_at = %(now)s
    WHERE id = %(id)s AND state = 'active' AND attempts_made = %(attempt)s
    RETURNING id
)
UPDATE {ATTEMPTS} SET finished_at = %(now)s, outcome = 'completed'
WHERE job_id IN (SELECT id FROM done) AND number = %(attempt)s
"""


def claim(queue, *, now, lease_expires_at, worker, include_rate_limited=True):
    """Claim the next due job in one statement, or return None.

    With include_rate_limited=False, jobs that count against the queue's rate limit are
    left for the locked ORM claim, which can count them.
    """
    params = {
        "queue": queue, "now": now, "lease": lease_expires_at, "worker": worker, "any_job": include_rate_limited,
    }
    jobs = list(Job.objects.raw(CLAIM_SQL, params))
    return jobs[0] if jobs else None


def complete(job, result, *, now):
    """Store a result in one statement; return False if the attempt lost its lease."""
    params = {"id": job.id, "attempt": job.attempts_made, "result": json.dumps(result), "now": now}
    with connection.cursor() as cursor:
        cursor.execute(COMPLETE_SQL, params)
        return cursor.rowcount == 1


def record_progress(job, value, message, *, now):
    """Set progress and add a log line in one statement; return False if the lease was lost.

    The commit does not wait for the WAL flush (synchronous_commit off for this
    transaction only): a database crash may lose the last progress updates, never a
    job's state, and each job saves several round trips of disk latency.
    """
    params = {"id": job.id, "attempt": job.attempts_made, "progress": value, "message": message, "now": now}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(f"UPDATE {JOBS} SET progress = %(progress)s, updated_at = %(now)s "
                       "WHERE id = %(id)s AND state = 'active' AND attempts_made = %(attempt)s", params)
        updated = cursor.rowcount == 1
        if updated and message:
            cursor.execute(f"INSERT INTO {LOGS} (job_id, created_at, level, message) "
                           "VALUES (%(id)s, %(now)s, 'info', %(message)s)", params)
    return updated
