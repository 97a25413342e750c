import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from nutricoach import periodic
from nutricoach.jobs import schedules
from nutricoach.jobs.models import Job
from nutricoach.jobs.schedules import PeriodicJob

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_JOB_NAMES = ("summarise-ended-days", "check-user-goals", "send-weekly-reports")

TEST_JOBS = []


@pytest.fixture
def test_jobs(settings):
    """Point settings.PERIODIC_JOBS at TEST_JOBS, filled with this app's declarations."""
    TEST_JOBS[:] = [job for job in periodic.PERIODIC_JOBS if job.name in SUMMARY_JOB_NAMES]
    settings.PERIODIC_JOBS = f"{__name__}.TEST_JOBS"
    yield TEST_JOBS
    TEST_JOBS.clear()


def stored_schedules():
    return dict(Schedule.objects.filter(name__startswith=schedules.NAME_PREFIX).values_list("name", "cron"))


def test_summary_jobs_are_declared_hourly_on_their_queue():
    declared = {job.name: job for job in periodic.PERIODIC_JOBS if job.name in SUMMARY_JOB_NAMES}

    assert sorted(declared) == sorted(SUMMARY_JOB_NAMES)
    for job in declared.values():
        assert job.queue == "data-aggregation"
        assert job.timeout <= settings.JOB_QUEUES["data-aggregation"]["timeout"]
        schedules.validate(job)


@pytest.mark.django_db
def test_register_twice_changes_nothing(test_jobs):
    first = schedules.register()
    rows = list(Schedule.objects.order_by("name").values("name", "cron", "func", "args", "cluster", "next_run"))
    second = schedules.register()

    assert sorted(first["created"]) == sorted(SUMMARY_JOB_NAMES)
    assert sorted(second["unchanged"]) == sorted(SUMMARY_JOB_NAMES)
    assert second["created"] == second["updated"] == second["removed"] == []
    assert list(Schedule.objects.order_by("name").values("name", "cron", "func", "args", "cluster", "next_run")) == rows


@pytest.mark.django_db
def test_register_updates_changed_cron(test_jobs):
    schedules.register()
    test_jobs[0] = replace(test_jobs[0], cron="35 * * * *")

    report = schedules.register()

    assert report["updated"] == [test_jobs[0].name]
    schedule = Schedule.objects.get(name=schedules.NAME_PREFIX + test_jobs[0].name)
    assert schedule.cron == "35 * * * *"
    assert schedule.next_run.minute == 35


@pytest.mark.django_db
def test_register_removes_undeclared_job(test_jobs):
    schedules.register()
    removed = test_jobs.pop()

    report = schedules.register()

    assert report["removed"] == [removed.name]
    assert schedules.NAME_PREFIX + removed.name not in stored_schedules()
    assert len(stored_schedules()) == len(SUMMARY_JOB_NAMES) - 1


@pytest.mark.django_db
def test_register_rejects_invalid_cron_and_writes_nothing(test_jobs):
    test_jobs.append(PeriodicJob("broken", "61 * * * *", "summaries.summarise_ended_days", "data-aggregation", 600))

    with pytest.raises(ValueError, match="invalid cron expression '61 \\* \\* \\* \\*'"):
        schedules.register()

    assert stored_schedules() == {}


# Two scheduler clusters on PostgreSQL ----------------------------------------------------


def database_url_of_tests():
    db = connection.settings_dict
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_scheduler_cluster(log_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_tests(),
        "NUTRICOACH_DATA_DIR": str(settings.DATA_DIR),
        "Q_CLUSTER_NAME": settings.JOB_SCHEDULER_QUEUE,
        "PYTHONUNBUFFERED": "1",
    }
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return process, log


def stop_cluster(process, log):
    # SIGTERM to the main process only, then SIGKILL to its group for any worker left.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)
    log.close()


@pytest.mark.postgres
@pytest.mark.workers
def test_two_scheduler_clusters_fire_tick_once(transactional_db, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("several schedulers are only supported on PostgreSQL; on SQLite one cluster runs it")
    TEST_JOBS[:] = [job for job in periodic.PERIODIC_JOBS if job.name == "summarise-ended-days"]
    settings.PERIODIC_JOBS = f"{__name__}.TEST_JOBS"
    schedules.register()
    tick = timezone.now().replace(microsecond=0) - timedelta(seconds=1)
    Schedule.objects.filter(name=schedules.NAME_PREFIX + "summarise-ended-days").update(next_run=tick)

    clusters = [start_scheduler_cluster(tmp_path / f"cluster-{number}.log") for number in (1, 2)]
    try:
        # Each cluster runs its scheduler about 30 s after it starts, then every 30 s.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not Job.objects.filter(task="summaries.summarise_ended_days").exists():
            time.sleep(0.5)
        # Both clusters started together, so the second one's pass follows within seconds.
        time.sleep(5)
    finally:
        for process, log in clusters:
            stop_cluster(process, log)
        TEST_JOBS.clear()

    output = "".join((tmp_path / f"cluster-{number}.log").read_text(errors="replace") for number in (1, 2))
    jobs = list(Job.objects.filter(task="summaries.summarise_ended_days"))
    assert len(jobs) == 1, output[-3000:]
    assert jobs[0].payload == {"scheduled_for": tick.isoformat()}
    assert jobs[0].queue == "data-aggregation"
    assert output.count(f"schedule summarise-ended-days fired for {tick.isoformat()}") == 1, output[-3000:]
    assert "already enqueued for this tick" not in output
    schedule = Schedule.objects.get(name=schedules.NAME_PREFIX + "summarise-ended-days")
    assert schedule.next_run > tick
    assert schedule.next_run.minute == 5
