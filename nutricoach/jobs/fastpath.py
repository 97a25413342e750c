"""Single-statement claim and completion for PostgreSQL.

The ORM versions in services.py take five to eight round trips per job; these take one
each, which is most of a no-op job's cost. They implement the same rules: the
ORM path stays the reference, and both are covered by the same tests.
"""

import json

from django.db import connection

from nutricoach.jobs.models import Job, JobAttempt, QueueState

JOBS = Job._meta.db_table
ATTEMPTS = JobAttempt._meta.db_table
QUEUES = QueueState._meta.db_table

CLAIM_SQL = f"""
WITH next AS (
    SELECT id FROM {JOBS}
    WHERE queue = %(queue)s AND state = 'waiting' AND run_at <= %(now)s
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


def claim(queue, *, now, lease_expires_at, worker):
    """Claim the next due job of an unlimited queue in one statement, or return None."""
    params = {"queue": queue, "now": now, "lease": lease_expires_at, "worker": worker}
    jobs = list(Job.objects.raw(CLAIM_SQL, params))
    return jobs[0] if jobs else None


def complete(job, result, *, now):
    """Store a result in one statement; return False if the attempt lost its lease."""
    params = {"id": job.id, "attempt": job.attempts_made, "result": json.dumps(result), "now": now}
    with connection.cursor() as cursor:
        cursor.execute(COMPLETE_SQL, params)
        return cursor.rowcount == 1
