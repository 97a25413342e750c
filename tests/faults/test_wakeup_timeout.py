"""A wake-up must stop claiming jobs in time for Django-Q2's timeout to spare the last one."""

import pytest

from nutricoach.jobs import runner, services, wakeups
from nutricoach.jobs.models import Job, JobState

pytestmark = pytest.mark.django_db

QUEUE = "maintenance"


def test_wakeup_stops_claiming_after_claim_window(settings, monkeypatch, tmp_path):
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, QUEUE: {**settings.JOB_QUEUES[QUEUE], "claim_window": 0.5}}
    pushed = []
    monkeypatch.setattr(wakeups, "push", lambda queue, count=1: pushed.append((queue, count)))
    jobs = [services.enqueue("tests.record", {"directory": str(tmp_path), "sleep": 0.3}).job for _ in range(5)]

    ran = runner.wake(QUEUE)

    # Jobs start at 0 s and 0.3 s; at 0.6 s the 0.5 s claim window has passed.
    assert ran == 2
    states = [Job.objects.get(pk=job.pk).state for job in jobs]
    assert states.count(JobState.COMPLETED) == 2
    assert states.count(JobState.WAITING) == 3
    assert pushed == [(QUEUE, 1)]


def test_wakeup_always_runs_one_job(settings, monkeypatch, tmp_path):
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, QUEUE: {**settings.JOB_QUEUES[QUEUE], "claim_window": 0.5}}
    monkeypatch.setattr(wakeups, "push", lambda queue, count=1: None)
    job = services.enqueue("tests.record", {"directory": str(tmp_path), "sleep": 0.6}).job

    assert runner.wake(QUEUE) == 1
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
