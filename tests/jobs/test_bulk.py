"""Set-based enqueue: jobs that an INSERT ... SELECT writes equal those of enqueue_many()."""

import json

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from nutricoach.jobs import bulk, services, wakeups
from nutricoach.jobs.models import Job, JobState
from nutricoach.jobs.runner import run_until_idle
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(settings.DATABASE_IS_SQLITE, reason="set-based enqueue needs PostgreSQL")

# Columns that differ between any two enqueues of the same request.
VOLATILE_COLUMNS = {"id", "run_at", "wakeup_sent_at", "created_at", "updated_at"}


def insert_jobs(task, requests):
    """Insert one job per (payload, idempotency_key, owner_id) with insert_jobs_sql(); return how many are new."""
    rows = ", ".join(["(%s::jsonb, %s::text, %s::bigint)"] * len(requests))
    relation = f"(VALUES {rows}) AS requests (payload, idempotency_key, owner_id)"
    params = [value for payload, key, owner_id in requests for value in (json.dumps(payload), key, owner_id)]
    statement, statement_params = bulk.insert_jobs_sql(
        task, requests=relation, requests_params=params, now=timezone.now()
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, statement_params)
        return len(cursor.fetchall())


def stable_fields(job):
    return {
        field.attname: getattr(job, field.attname)
        for field in Job._meta.concrete_fields
        if field.attname not in VOLATILE_COLUMNS
    }


@postgres_only
@pytest.mark.parametrize("task", ["tests.noop", "notifications.send"])
def test_inserted_job_matches_enqueue_many(task):
    owner = UserFactory()
    services.enqueue_many(task, [services.JobRequest({"n": 1}, idempotency_key="same-key", owner_id=owner.pk)])
    expected = stable_fields(Job.objects.get())
    Job.objects.all().delete()

    created = insert_jobs(task, [({"n": 1}, "same-key", owner.pk)])

    job = Job.objects.get()
    assert created == 1
    assert stable_fields(job) == expected
    assert job.state == JobState.WAITING
    assert job.run_at == job.wakeup_sent_at == job.created_at
    assert job.id.version == 4


@postgres_only
def test_insert_skips_existing_and_repeated_keys():
    existing = services.enqueue("tests.noop", {"n": 0}, idempotency_key="bulk-0").job

    created = insert_jobs("tests.noop", [
        ({"n": 0}, "bulk-0", None),
        ({"n": 1}, "bulk-1", None),
        ({"n": 1}, "bulk-1", None),
        ({"n": 2}, None, None),
    ])

    assert created == 2
    assert Job.objects.count() == 3
    assert Job.objects.get(idempotency_key="bulk-0").updated_at == existing.updated_at
    assert run_until_idle("maintenance") == 3


@postgres_only
def test_insert_rejects_unknown_task():
    with pytest.raises(services.EnqueueError, match="No job handler is registered as 'tests.missing'"):
        bulk.insert_jobs_sql("tests.missing", requests="requests", now=timezone.now())


@pytest.mark.skipif(not settings.DATABASE_IS_SQLITE, reason="checks the SQLite refusal")
def test_insert_rejects_sqlite():
    with pytest.raises(services.EnqueueError, match="needs PostgreSQL; on sqlite use enqueue_many"):
        bulk.insert_jobs_sql("tests.noop", requests="requests", now=timezone.now())


def test_wakeups_follow_commit(monkeypatch, django_capture_on_commit_callbacks):
    pushed = []
    monkeypatch.setattr(wakeups, "push", lambda queue, count=1: pushed.append((queue, count)))

    with django_capture_on_commit_callbacks() as callbacks:
        bulk.push_wakeups_on_commit("tests.noop", 0)
        bulk.push_wakeups_on_commit("notifications.send", 3)
        bulk.push_wakeups_on_commit("notifications.send", 500)
    assert pushed == []

    for callback in callbacks:
        callback()
    workers = settings.JOB_QUEUES["notifications"]["workers"]
    assert pushed == [("notifications", 3), ("notifications", workers)]
