from datetime import UTC, datetime, timedelta

import pytest
from django_q.models import Failure, Success

from maintenance.services import job_history_prune
from nutricoach.jobs.models import Job, JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def completed_job(finished_at, task="tests.noop"):
    return JobFactory(task=task, state=JobState.COMPLETED, finished_at=finished_at)


def q2_task(model, stopped, name):
    return model.objects.create(
        id=name, name=name, func="math.floor", started=stopped - timedelta(seconds=1), stopped=stopped,
        success=model is Success,
    )


@pytest.mark.parametrize(
    ("finished_at", "deleted"),
    [
        (NOW - timedelta(hours=24, seconds=1), True),
        (NOW - timedelta(hours=24), False),
        (NOW - timedelta(hours=24) + timedelta(seconds=1), False),
    ],
    ids=["one-second-before-cutoff", "exactly-at-cutoff", "one-second-after-cutoff"],
)
def test_completed_job_age_at_cutoff_boundary(settings, finished_at, deleted):
    settings.JOB_RETENTION = {"completed_hours": 24, "completed_per_task": 10, "failed_days": 7}
    job = completed_job(finished_at)

    outcome = job_history_prune(now=NOW)

    assert Job.objects.filter(pk=job.pk).exists() is not deleted
    assert outcome.counts["completed"] == (1 if deleted else 0)


def test_prune_keeps_dead_letters_and_deletes_q2_rows(settings):
    settings.JOB_RETENTION = {"completed_hours": 24, "completed_per_task": 10, "failed_days": 7}
    old = NOW - timedelta(days=30)
    dead_letter = JobFactory(state=JobState.FAILED, finished_at=old, dead_lettered_at=old)
    cancelled = JobFactory(state=JobState.CANCELLED, finished_at=old)
    q2_task(Success, old, "old-success")
    q2_task(Failure, old, "old-failure")
    q2_task(Success, NOW - timedelta(hours=1), "recent-success")

    outcome = job_history_prune(now=NOW)

    assert outcome.counts == {"completed": 0, "failed": 1, "q2_success": 1, "q2_failure": 1}
    assert Job.objects.filter(pk=dead_letter.pk).exists()
    assert not Job.objects.filter(pk=cancelled.pk).exists()
    assert list(Success.objects.values_list("name", flat=True)) == ["recent-success"]
    assert Failure.objects.count() == 0


def test_prune_bound_reports_more_and_next_run_finishes(settings):
    settings.JOB_RETENTION = {"completed_hours": 24, "completed_per_task": 2, "failed_days": 7}
    for _ in range(3):
        completed_job(NOW - timedelta(days=2))
    for minute in range(4):
        completed_job(NOW - timedelta(minutes=minute + 1))

    first = job_history_prune(now=NOW, batch_size=2, max_batches=2)
    second = job_history_prune(now=NOW, batch_size=2, max_batches=2)

    assert sum(first.counts.values()) == 4
    assert first.more is True
    assert sum(second.counts.values()) == 1
    assert second.more is False
    kept = Job.objects.order_by("-finished_at").values_list("finished_at", flat=True)
    assert list(kept) == [NOW - timedelta(minutes=1), NOW - timedelta(minutes=2)]


def test_dry_run_counts_and_deletes_nothing(settings):
    settings.JOB_RETENTION = {"completed_hours": 24, "completed_per_task": 10, "failed_days": 7}
    for _ in range(3):
        completed_job(NOW - timedelta(days=2))
    q2_task(Failure, NOW - timedelta(days=8), "old-failure")

    outcome = job_history_prune(now=NOW, dry_run=True, batch_size=1, max_batches=1)

    assert outcome.counts == {"completed": 3, "failed": 0, "q2_success": 0, "q2_failure": 1}
    assert outcome.more is False
    assert outcome.message.startswith("would delete 4 rows of job history")
    assert Job.objects.count() == 3
    assert Failure.objects.count() == 1
