import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from maintenance import locks, runs
from maintenance.models import MaintenanceLock
from meals.models import Meal
from nutricoach.jobs import schedules
from nutricoach.jobs import services as job_services
from nutricoach.jobs.models import Job, JobLog, JobState
from nutricoach.jobs.runner import run_until_idle
from nutricoach.jobs.services import enqueue
from tests.factories import MealFactory

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = "maintenance.archive_old_meals"


def old_meals(count):
    eaten_at = timezone.now() - timedelta(days=400)
    return [MealFactory(eaten_at=eaten_at) for _ in range(count)]


def job_messages(job):
    return list(JobLog.objects.filter(job=job).values_list("message", flat=True))


@pytest.fixture
def small_batches(settings):
    settings.MAINTENANCE_BATCH_SIZE = 2
    settings.MAINTENANCE_BATCHES_PER_JOB = 1


@pytest.mark.django_db
def test_job_chains_follow_ups_until_done(small_batches):
    meals = old_meals(5)
    first = enqueue(ARCHIVE, {"scheduled_for": "2026-12-04T03:00:00+00:00"}).job

    ran = run_until_idle("maintenance")

    jobs = list(Job.objects.filter(task=ARCHIVE).order_by("created_at"))
    assert ran == 3
    assert [job.state for job in jobs] == [JobState.COMPLETED] * 3
    assert [job.payload.get("follow_up", 0) for job in jobs] == [0, 1, 2]
    assert [job.result["counts"]["meals"] for job in jobs] == [2, 2, 1]
    assert jobs[0].result["follow_up_job"] == str(jobs[1].id)
    assert jobs[1].idempotency_key == f"maintenance:{ARCHIVE}:after:{first.id}"
    assert "follow_up_job" not in jobs[2].result
    assert jobs[2].result["more"] is False
    assert Meal.objects.filter(pk__in=[meal.pk for meal in meals], archived=True).count() == 5
    assert not MaintenanceLock.objects.exists()
    assert f"rows remain; follow-up job {jobs[1].id} continues" in job_messages(jobs[0])


@pytest.mark.django_db
def test_follow_up_chain_stops_at_limit(small_batches, monkeypatch, caplog):
    monkeypatch.setattr(runs, "MAX_FOLLOW_UPS", 1)
    old_meals(5)
    enqueue(ARCHIVE, {})

    run_until_idle("maintenance")

    jobs = list(Job.objects.filter(task=ARCHIVE).order_by("created_at"))
    assert len(jobs) == 2
    assert jobs[1].result["follow_up_job"] is None
    assert Meal.objects.filter(archived=False).count() == 1
    assert f"maintenance task {ARCHIVE} reached 1 follow-up jobs; the next scheduled run continues" in caplog.messages


@pytest.mark.django_db
def test_run_while_lock_held_records_skip(caplog):
    meals = old_meals(2)
    locks.acquire(ARCHIVE, holder="command on ops-host:4242")
    job = enqueue(ARCHIVE, {}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.result["skipped"] is True
    assert job.result["held_by"] == "command on ops-host:4242"
    assert f"skipped: {ARCHIVE} is already running (command on ops-host:4242)" in job_messages(job)
    assert (
        f"maintenance task {ARCHIVE} skipped (job {job.id}): already running (command on ops-host:4242)"
        in caplog.messages
    )
    assert Meal.objects.filter(pk__in=[meal.pk for meal in meals], archived=False).count() == 2


@pytest.mark.django_db
def test_two_overlapping_job_runs_second_skips(small_batches, settings, monkeypatch):
    settings.MAINTENANCE_BATCHES_PER_JOB = 3
    meals = old_meals(5)
    first = enqueue(ARCHIVE, {}).job
    second = enqueue(ARCHIVE, {}).job
    Job.objects.filter(pk=second.pk).update(run_at=timezone.now() + timedelta(seconds=1))
    original_renew = locks.Lock.renew
    overlapping = []

    def renew_and_start_second_run(lock):
        # Runs the second job in the middle of the first one, after its first batch.
        if not overlapping:
            Job.objects.filter(pk=second.pk).update(run_at=timezone.now())
            overlapping.append(run_until_idle("maintenance"))
        return original_renew(lock)

    monkeypatch.setattr(locks.Lock, "renew", renew_and_start_second_run)
    run_until_idle("maintenance")

    first.refresh_from_db()
    second.refresh_from_db()
    assert overlapping == [1]
    assert second.result["skipped"] is True
    assert second.result["held_by"] == f"job {first.id} attempt 1"
    assert first.result["counts"] == {"meals": 5}
    assert Meal.objects.filter(pk__in=[meal.pk for meal in meals], archived=True).count() == 5


@pytest.mark.django_db
def test_error_mid_run_then_retry_finishes(small_batches, settings, monkeypatch):
    settings.MAINTENANCE_BATCHES_PER_JOB = 3
    old_meals(5)
    job = enqueue(ARCHIVE, {}).job
    original_heartbeat = runs._heartbeat

    def heartbeat_that_fails(ctx, lock):
        raise ConnectionError("database connection dropped")

    monkeypatch.setattr(runs, "_heartbeat", heartbeat_that_fails)
    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.DELAYED
    assert job.error == "ConnectionError: database connection dropped"
    archived = Meal.objects.filter(archived=True)
    assert archived.count() == 2
    assert not archived.filter(archived_at__isnull=True).exists()
    assert not Meal.objects.filter(archived=False, archived_at__isnull=False).exists()
    assert not MaintenanceLock.objects.exists()

    monkeypatch.setattr(runs, "_heartbeat", original_heartbeat)
    job_services.retry_now(job)
    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.result["counts"] == {"meals": 3}
    assert Meal.objects.filter(archived=False).count() == 0


@pytest.mark.django_db
def test_bad_temp_folder_dead_letters_job(settings, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    settings.MAINTENANCE_TEMP_DIR = tmp_path / "link"
    job = enqueue("maintenance.clean_temp_files", {}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_kind == "terminal"
    assert "is a symbolic link or not a directory" in job.error
    assert not MaintenanceLock.objects.exists()


@pytest.mark.django_db
def test_every_task_runs_as_job(settings, tmp_path):
    settings.MAINTENANCE_TEMP_DIR = tmp_path
    names = [
        "maintenance.clear_expired_sessions",
        "maintenance.clean_temp_files",
        "maintenance.archive_old_meals",
        "maintenance.prune_job_history",
    ]
    jobs = [enqueue(name, {"scheduled_for": "2026-12-04T03:00:00+00:00"}).job for name in names]

    run_until_idle("maintenance")

    for job in jobs:
        job.refresh_from_db()
        assert job.state == JobState.COMPLETED, job.task
        assert job.result["more"] is False, job.task


@pytest.mark.django_db
def test_command_dry_run_changes_nothing(small_batches):
    meals = old_meals(3)
    output = StringIO()

    call_command("archive_old_meals", "--dry-run", stdout=output)

    assert output.getvalue().startswith("would archive 3 meals eaten before ")
    assert Meal.objects.filter(pk__in=[meal.pk for meal in meals], archived=False).count() == 3
    assert not MaintenanceLock.objects.exists()


@pytest.mark.django_db
def test_command_repeats_batches_until_done(small_batches):
    old_meals(5)
    output = StringIO()

    call_command("archive_old_meals", stdout=output)

    lines = output.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("archived 2 meals")
    assert lines[0].endswith("(more remain)")
    assert lines[2].startswith("archived 1 meals")
    assert not lines[2].endswith("(more remain)")
    assert Meal.objects.filter(archived=False).count() == 0
    assert not MaintenanceLock.objects.exists()


@pytest.mark.django_db
def test_command_refuses_while_lock_held():
    old_meals(1)
    locks.acquire(ARCHIVE, holder="job 1234 attempt 1")

    with pytest.raises(CommandError, match=rf"{ARCHIVE} is already running \(job 1234 attempt 1 until "):
        call_command("archive_old_meals", stdout=StringIO())

    assert Meal.objects.filter(archived=False).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command", ["clear_expired_sessions", "clean_temp_files", "archive_old_meals", "prune_job_history"]
)
def test_every_command_has_dry_run(command, settings, tmp_path):
    settings.MAINTENANCE_TEMP_DIR = tmp_path
    output = StringIO()

    call_command(command, "--dry-run", stdout=output)

    assert output.getvalue().startswith("would ")


def test_database_url():
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False


@pytest.mark.django_db(transaction=True)
def test_command_in_other_process_sees_job_lock():
    meals = old_meals(2)
    locks.acquire(ARCHIVE, holder="job 1234 attempt 1")
    env = {**os.environ, "DATABASE_URL": test_database_url(), "NUTRICOACH_DATA_DIR": str(django_settings.DATA_DIR)}

    completed = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "archive_old_meals"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )

    assert completed.returncode == 1
    assert f"{ARCHIVE} is already running (job 1234 attempt 1 until " in completed.stderr
    assert Meal.objects.filter(pk__in=[meal.pk for meal in meals], archived=False).count() == 2


@pytest.mark.django_db
def test_periodic_declarations_run_nightly_with_one_history_prune():
    declared = schedules.declared()
    maintenance = {name: job for name, job in declared.items() if job.queue == "maintenance"}

    pruning = [job for job in declared.values() if job.task == "maintenance.prune_job_history"]
    assert [job.task for job in pruning] == ["maintenance.prune_job_history"]
    assert {job.task for job in maintenance.values()} >= {
        "maintenance.clear_expired_sessions",
        "maintenance.clean_temp_files",
        "maintenance.archive_old_meals",
        "maintenance.prune_job_history",
    }
    for job in maintenance.values():
        if job.task.startswith("maintenance."):
            assert job.cron == "0 3 * * *"
            schedules.validate(job)
