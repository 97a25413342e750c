"""How stalled batches are recovered when a handler extends its lease or two sweeps overlap."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from nutricoach.jobs import runner, services
from nutricoach.jobs.models import Job, JobState

QUEUE = "maintenance"

postgres_only = pytest.mark.skipif(settings.DATABASE_IS_SQLITE, reason="batched claims run on PostgreSQL only")


@postgres_only
@pytest.mark.django_db
def test_extended_lease_keeps_batch_free(monkeypatch):
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: None)
    jobs = [services.enqueue("tests.noop", {"n": n}).job for n in range(2)]
    batch = services.claim_batch(QUEUE, limit=2)
    claimed_at = Job.objects.get(pk=batch[0].pk).started_at
    lease = timedelta(seconds=services.lease_seconds(QUEUE))

    # The first job of the batch sends a heartbeat a minute in, then its worker dies
    # before the second job starts.
    monkeypatch.setattr(timezone, "now", lambda: claimed_at + timedelta(minutes=1))
    assert runner.JobContext(batch[0]).extend_lease()

    for sweep_at in (claimed_at + lease + timedelta(seconds=1), claimed_at + timedelta(minutes=1) + lease + timedelta(seconds=1)):
        monkeypatch.setattr(timezone, "now", lambda at=sweep_at: at)
        services.recover_stalled()

    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]):
        assert (job.state, job.attempts_made, job.claim_alone) == (JobState.WAITING, 0, True)
        assert not job.attempts.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_charge_no_batch_job(monkeypatch):
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: None)
    jobs = [services.enqueue("tests.noop", {"n": n}).job for n in range(2)]
    for _ in jobs:
        services.claim_next(QUEUE)
    claimed_at = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(
        worker="host-a:1", started_at=claimed_at, lease_expires_at=claimed_at + timedelta(minutes=1)
    )

    # A second dispatcher sweeps while the first is between the jobs of the batch.
    second_sweep = threading.Thread(target=sweep_on_own_connection)
    real_log = services.logger.warning

    def log_and_start_second_sweep(message, *args, **kwargs):
        real_log(message, *args, **kwargs)
        if message.startswith("job stalled in a batch") and not second_sweep.is_alive():
            second_sweep.start()
            second_sweep.join(timeout=2)

    monkeypatch.setattr(services.logger, "warning", log_and_start_second_sweep)
    services.recover_stalled()
    second_sweep.join(timeout=30)

    assert not second_sweep.is_alive()
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]):
        assert (job.state, job.attempts_made, job.claim_alone) == (JobState.WAITING, 0, True)
        assert not job.attempts.exists()


def sweep_on_own_connection():
    try:
        services.recover_stalled()
    finally:
        connection.close()
