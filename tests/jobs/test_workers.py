"""The job runtime with real Django-Q2 clusters and dispatchers in subprocesses."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings

from nutricoach.jobs import services
from nutricoach.jobs.models import Job, JobAttempt, JobState
from tests.processes import start_cluster, start_dispatcher, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def states(jobs):
    return [Job.objects.get(pk=job.pk).state for job in jobs]


def all_finished(jobs):
    return all(state in (JobState.COMPLETED, JobState.FAILED) for state in states(jobs))


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_high_priority_job_starts_next(processes, tmp_path):
    blocker = services.enqueue("tests.record", {"directory": str(tmp_path), "label": "blocker", "sleep": 2}).job
    processes.append(start_cluster("maintenance", tmp_path, MAINTENANCE_WORKERS=1))
    wait_for(lambda: Job.objects.get(pk=blocker.pk).state == JobState.ACTIVE, timeout=30, message="blocker active")

    low = [services.enqueue("tests.record", {"directory": str(tmp_path), "label": f"low{i}"}).job for i in range(20)]
    high = services.enqueue("tests.record", {"directory": str(tmp_path), "label": "high"}, priority=10).job
    wait_for(lambda: all_finished([blocker, *low, high]), timeout=60, message="all jobs finished")

    labels = [line.split()[1] for line in lines(tmp_path / "starts.log")]
    assert labels[:2] == ["blocker", "high"]
    assert sorted(labels[2:]) == sorted(f"low{i}" for i in range(20))


def test_rate_limit_across_two_clusters(processes, tmp_path):
    window = 6
    env = {"MEAL_PROCESSING_RATE_LIMIT": 10, "MEAL_PROCESSING_RATE_WINDOW": window, "MEAL_PROCESSING_WORKERS": 3}
    processes.append(start_cluster("meal-processing", tmp_path, name="cluster-a", **env))
    processes.append(start_cluster("meal-processing", tmp_path, name="cluster-b", **env))
    processes.append(start_dispatcher(tmp_path, **env))

    jobs = [services.enqueue("tests.limited", {"directory": str(tmp_path)}, rate_limited=True).job for _ in range(25)]
    wait_for(lambda: all_finished(jobs), timeout=90, message="25 rate-limited jobs finished")

    starts = sorted(JobAttempt.objects.filter(job__in=jobs).values_list("started_at", flat=True))
    assert len(starts) == 25
    busiest = max(
        sum(1 for other in starts if start <= other < start + timedelta(seconds=window)) for start in starts
    )
    assert busiest <= 10
    assert all(job.attempts_made == 1 for job in Job.objects.filter(pk__in=[job.pk for job in jobs]))
    workers = {pid.split(":")[1] for pid in JobAttempt.objects.filter(job__in=jobs).values_list("worker", flat=True)}
    assert len(workers) >= 2


def test_sigkilled_worker_job_retried_and_completes_once(processes, tmp_path):
    env = {"MAINTENANCE_TIMEOUT": 6, "MAINTENANCE_WORKERS": 2, "JOB_LEASE_GRACE_SECONDS": 1}
    processes.append(start_cluster("maintenance", tmp_path, **env))
    processes.append(start_dispatcher(tmp_path, **env))
    job = services.enqueue("tests.record", {"directory": str(tmp_path), "sleep": 2}).job
    start_file = tmp_path / f"start-{job.pk}"
    wait_for(start_file.exists, timeout=30, message="first attempt started")

    worker_pid = int(Job.objects.get(pk=job.pk).worker.split(":")[1])
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: all_finished([job]), timeout=60, message="job finished after the worker was killed")

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 2
    assert list(job.attempts.values_list("outcome", flat=True)) == ["stalled", "completed"]
    assert len(lines(start_file)) == 2
    assert len(lines(tmp_path / f"done-{job.pk}")) == 1


def test_sigterm_lets_running_job_finish(processes, tmp_path):
    cluster = start_cluster("maintenance", tmp_path, MAINTENANCE_WORKERS=1)
    processes.append(cluster)
    job = services.enqueue("tests.record", {"directory": str(tmp_path), "sleep": 3}).job
    wait_for((tmp_path / f"start-{job.pk}").exists, timeout=30, message="job started")

    cluster.popen.send_signal(signal.SIGTERM)
    cluster.popen.wait(timeout=30)

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert len(lines(tmp_path / f"done-{job.pk}")) == 1


@pytest.mark.skipif(bool(settings.REDIS_URL), reason="the ORM broker's pull-ahead redelivery is what is tested")
def test_orm_broker_redelivery_never_runs_a_job_twice(processes, tmp_path):
    # A retry shorter than the job makes Q2 redeliver wake-ups pulled ahead while the
    # first one still runs, so only the claim keeps each job to one run.
    env = {
        "MAINTENANCE_WORKERS": 2, "MAINTENANCE_TIMEOUT": 20, "MAINTENANCE_RETRY": 1,
        "EXTRA_SILENCED_SYSTEM_CHECKS": "jobs.E002",
    }
    processes.append(start_cluster("maintenance", tmp_path, **env))
    jobs = [services.enqueue("tests.record", {"directory": str(tmp_path), "sleep": 1.5}).job for _ in range(6)]
    wait_for(lambda: all_finished(jobs), timeout=60, message="all jobs finished")

    for job in jobs:
        assert len(lines(tmp_path / f"start-{job.pk}")) == 1
        assert len(lines(tmp_path / f"done-{job.pk}")) == 1
    assert all(job.attempts_made == 1 for job in Job.objects.filter(pk__in=[job.pk for job in jobs]))


@pytest.mark.redis
def test_waiting_jobs_complete_after_redis_restart(processes, tmp_path, private_redis):
    env = {"REDIS_URL": private_redis.url, "MAINTENANCE_WORKERS": 2}
    processes.append(start_cluster("maintenance", tmp_path, **env))
    processes.append(start_dispatcher(tmp_path, **env))
    # A finished job shows the cluster is up and pulling from the private Redis.
    warm_up = services.enqueue("tests.noop").job
    wait_for(lambda: all_finished([warm_up]), timeout=60, message="warm-up job finished")
    services.set_paused("maintenance", True)
    jobs = [services.enqueue("tests.record", {"directory": str(tmp_path)}).job for _ in range(20)]
    time.sleep(1)

    # Wake-ups held in Redis are lost with the restart.
    private_redis.stop()
    time.sleep(1)
    private_redis.start()
    services.set_paused("maintenance", False)
    # Q2's pusher waits 10 s after a failed pull before it tries Redis again.
    wait_for(lambda: all_finished(jobs), timeout=90, message="waiting jobs finished after the Redis restart")

    assert states(jobs) == [JobState.COMPLETED] * 20
    for job in jobs:
        assert len(lines(tmp_path / f"done-{job.pk}")) == 1
