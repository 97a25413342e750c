"""Batched claims on PostgreSQL, and how a worker that dies holding a batch is recovered."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from nutricoach.jobs import runner, services
from nutricoach.jobs.models import Job, JobAttempt, JobLog, JobState
from tests.processes import start_cluster, start_dispatcher, wait_for

QUEUE = "maintenance"

postgres_only = pytest.mark.skipif(settings.DATABASE_IS_SQLITE, reason="batched claims run on PostgreSQL only")


def enqueue_noops(count, **kwargs):
    return [services.enqueue("tests.noop", {"n": n}, **kwargs).job for n in range(count)]


def finished(job):
    now = timezone.now()
    return services.FinishedJob(job, '{"ok": true}', now, now)


@postgres_only
@pytest.mark.django_db
def test_batch_in_claim_order():
    low = enqueue_noops(3)
    high = services.enqueue("tests.noop", priority=5).job

    batch = services.claim_batch(QUEUE, limit=10)

    assert [job.pk for job in batch] == [high.pk, *(job.pk for job in low)]
    rows = Job.objects.filter(pk__in=[job.pk for job in batch])
    assert {row.state for row in rows} == {JobState.ACTIVE}
    assert len({row.started_at for row in rows}) == 1
    assert JobAttempt.objects.filter(job__in=rows, number=1, outcome="").count() == 4


@postgres_only
@pytest.mark.django_db
def test_batch_stores_results_with_the_next_claim():
    first, second = enqueue_noops(2)
    batch = services.claim_batch(QUEUE, limit=1)
    started = timezone.now()
    ended = started + timedelta(milliseconds=3)

    following = services.claim_batch(
        QUEUE, finished=[services.FinishedJob(batch[0], '{"answer": 42}', started, ended)], limit=1
    )

    stored = Job.objects.get(pk=first.pk)
    assert (stored.state, stored.result, stored.progress) == (JobState.COMPLETED, {"answer": 42}, 100)
    assert (stored.started_at, stored.finished_at) == (started, ended)
    attempt = stored.attempts.get()
    assert (attempt.outcome, attempt.started_at, attempt.finished_at) == ("completed", started, ended)
    assert [job.pk for job in following] == [second.pk]


@postgres_only
@pytest.mark.django_db
def test_batch_drops_result_after_lost_lease(caplog):
    job = enqueue_noops(1)[0]
    claimed = services.claim_batch(QUEUE, limit=1)[0]
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    services.recover_stalled()

    with caplog.at_level(logging.WARNING, logger="nutricoach.jobs.services"):
        services.claim_batch(QUEUE, finished=[finished(claimed)], limit=0)

    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert job.result is None
    assert f"job {job.pk} finished after losing its lease; its result was not stored" in caplog.text


@postgres_only
@pytest.mark.django_db
def test_unstarted_jobs_go_back_without_spending_an_attempt(monkeypatch):
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: None)
    jobs = enqueue_noops(3)
    batch = services.claim_batch(QUEUE, limit=3)

    services.claim_batch(QUEUE, finished=[finished(batch[0])], unstarted=batch[1:], limit=0)

    states = {job.pk: (job.state, job.attempts_made, job.worker) for job in Job.objects.filter(pk__in=[job.pk for job in jobs])}
    assert states[jobs[0].pk] == (JobState.COMPLETED, 1, services.worker_name())
    assert states[jobs[1].pk] == (JobState.WAITING, 0, "")
    assert states[jobs[2].pk] == (JobState.WAITING, 0, "")
    assert JobAttempt.objects.filter(job_id__in=[jobs[1].pk, jobs[2].pk]).count() == 0
    assert [job.pk for job in services.claim_batch(QUEUE, limit=5)] == [jobs[1].pk, jobs[2].pk]


@postgres_only
@pytest.mark.django_db
def test_claim_alone_job_in_own_batch():
    jobs = enqueue_noops(4)
    Job.objects.filter(pk=jobs[2].pk).update(claim_alone=True)

    batches = [[job.pk for job in services.claim_batch(QUEUE, limit=10)] for _ in range(3)]

    assert batches == [[jobs[0].pk, jobs[1].pk], [jobs[2].pk], [jobs[3].pk]]


@postgres_only
@pytest.mark.django_db
def test_paused_queue_still_stores_results(monkeypatch):
    job = enqueue_noops(1)[0]
    claimed = services.claim_batch(QUEUE, limit=1)[0]
    enqueue_noops(1)
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: None)
    services.set_paused(QUEUE, True)

    assert services.claim_batch(QUEUE, finished=[finished(claimed)], limit=10) == []
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED


@postgres_only
@pytest.mark.django_db
def test_wake_runs_a_backlog_in_batches():
    jobs = enqueue_noops(30)
    runner._durations[QUEUE] = 0.001

    assert runner.wake(QUEUE) == 30

    rows = Job.objects.filter(pk__in=[job.pk for job in jobs])
    assert {(row.state, row.attempts_made) for row in rows} == {(JobState.COMPLETED, 1)}
    # Claimed together in batches of 20, but each job records when it really started.
    assert len({row.started_at for row in rows}) == 30
    assert JobAttempt.objects.filter(job__in=rows, outcome="completed").count() == 30


@pytest.mark.parametrize(
    ("estimate", "size"),
    [(None, 1), (0.0001, runner.MAX_BATCH), (0.002, 10), (0.05, 1), (30.0, 1)],
)
def test_batch_size_follows_durations(monkeypatch, estimate, size):
    monkeypatch.setattr(runner, "BATCH_SECONDS", 0.02)
    if estimate is not None:
        runner._durations[QUEUE] = estimate

    assert runner.batch_size(QUEUE) == size


def test_job_durations_move_the_estimate():
    runner._observe(QUEUE, 1.0)
    runner._observe(QUEUE, 0.0)

    assert runner._durations[QUEUE] == pytest.approx(1.0 - runner.DURATION_WEIGHT)


def hold_as_batch(jobs):
    """Make claimed jobs look like one worker's batch whose lease has expired."""
    claimed_at = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(
        worker="host-a:1", started_at=claimed_at, lease_expires_at=claimed_at + timedelta(minutes=1)
    )


@pytest.mark.django_db
def test_stalled_batch_handed_back_free(monkeypatch):
    pushed = []
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: pushed.append(queue))
    jobs = enqueue_noops(3)
    for _ in jobs:
        services.claim_next(QUEUE)
    hold_as_batch(jobs)

    assert services.recover_stalled() == 3

    rows = Job.objects.filter(pk__in=[job.pk for job in jobs])
    assert {(row.state, row.attempts_made, row.claim_alone, row.worker) for row in rows} == {
        (JobState.WAITING, 0, True, "")
    }
    assert JobAttempt.objects.filter(job__in=rows).count() == 0
    message = JobLog.objects.filter(job=jobs[0]).get().message
    assert message.startswith("worker host-a:1 stopped responding while it held this job in a batch of 3")
    assert pushed == [QUEUE]


@pytest.mark.django_db
def test_stalled_job_held_alone_spends_an_attempt():
    job = enqueue_noops(1)[0]
    services.claim_next(QUEUE)
    hold_as_batch([job])

    services.recover_stalled()

    job.refresh_from_db()
    assert (job.state, job.attempts_made, job.claim_alone) == (JobState.WAITING, 1, False)
    assert list(job.attempts.values_list("outcome", flat=True)) == ["stalled"]


@postgres_only
@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_worker_killing_job_dead_lettered(processes, tmp_path):
    env = {"MAINTENANCE_WORKERS": 1, "MAINTENANCE_TIMEOUT": 4, "JOB_LEASE_GRACE_SECONDS": 1}
    processes.append(start_cluster(QUEUE, tmp_path, **env))
    processes.append(start_dispatcher(tmp_path, **env))
    # Fast jobs first, so the worker's estimate makes it claim the next ones as a batch.
    warm_up = enqueue_noops(20)
    warm_up_ids = [job.pk for job in warm_up]

    def warmed_up():
        return set(Job.objects.filter(pk__in=warm_up_ids).values_list("state", flat=True)) == {JobState.COMPLETED}

    wait_for(warmed_up, timeout=60, message="warm-up jobs finished")

    services.set_paused(QUEUE, True)
    before = [services.enqueue("tests.record", {"directory": str(tmp_path), "label": f"b{n}"}).job for n in range(3)]
    killer = services.enqueue("tests.kill_worker", {"directory": str(tmp_path)}).job
    after = [services.enqueue("tests.record", {"directory": str(tmp_path), "label": f"a{n}"}).job for n in range(3)]
    services.set_paused(QUEUE, False)
    others = before + after

    def settled():
        states = set(Job.objects.filter(pk__in=[job.pk for job in [*others, killer]]).values_list("state", flat=True))
        return states <= {JobState.COMPLETED, JobState.FAILED}

    wait_for(settled, timeout=120, message="the batch settled after the worker deaths")

    killer.refresh_from_db()
    assert killer.is_dead_letter
    assert killer.attempts_made == 2
    assert list(killer.attempts.values_list("outcome", flat=True)) == ["stalled", "stalled"]
    # Three deaths in all: the batch's, handed back free, then two charged ones alone.
    assert len((tmp_path / f"start-{killer.pk}").read_text().splitlines()) == 3
    for job in Job.objects.filter(pk__in=[job.pk for job in others]):
        assert (job.state, job.attempts_made) == (JobState.COMPLETED, 1)
        assert (tmp_path / f"done-{job.pk}").exists()


@postgres_only
@pytest.mark.django_db
def test_stale_worker_cannot_touch_reclaimed_job(monkeypatch):
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: None)
    first, second = enqueue_noops(2)
    stale = services.claim_batch(QUEUE, limit=2)
    Job.objects.filter(pk__in=[first.pk, second.pk]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    services.recover_stalled()
    monkeypatch.setattr(services, "worker_name", lambda: "host-b:2")
    services.claim_batch(QUEUE, limit=1)

    # The first worker wakes up after its batch was handed back and taken by host-b,
    # holding the same attempt number that host-b's claim now has.
    assert services.set_progress(stale[0], 50) is False
    assert services.fail(stale[0], error="late", kind="retryable") is None
    services.claim_batch(QUEUE, finished=[finished(stale[0])], limit=0)

    row = Job.objects.get(pk=first.pk)
    assert (row.state, row.attempts_made, row.worker, row.progress) == (JobState.ACTIVE, 1, "host-b:2", 0)
    assert row.attempts.get().outcome == ""


@pytest.mark.django_db
def test_stalled_job_whose_batch_mate_failed_handed_back(monkeypatch):
    monkeypatch.setattr(services.wakeups, "push", lambda queue, count=1: None)
    failed, left = enqueue_noops(2)
    for _ in range(2):
        services.claim_next(QUEUE)
    hold_as_batch([failed, left])
    services.fail(Job.objects.get(pk=failed.pk), error="boom", kind="terminal")

    services.recover_stalled()

    left.refresh_from_db()
    assert (left.state, left.attempts_made, left.claim_alone) == (JobState.WAITING, 0, True)
    assert "in a batch of 2" in JobLog.objects.filter(job=left).get().message
