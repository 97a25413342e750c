"""SIGKILL a worker, a whole cluster or the dispatcher while 500 meal parse jobs run.

Every meal must end parsed exactly once (or dead-lettered with a reason), and the
jobs the killed processes held must come back through the dispatcher's stall recovery.
"""

import os
import signal
import time

import pytest

from nutricoach.jobs.models import Job, JobState
from tests.faults.meals_under_fault import (
    assert_nothing_lost,
    create_meals,
    finished_count,
    stranded_jobs,
)
from tests.faults.stack import FAST_RECOVERY, QUEUE
from tests.processes import start_cluster, start_dispatcher, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_parser")]

MEALS = 500
DRAIN_TIMEOUT = 120


def wait_until_finished(meal_ids, count, message):
    wait_for(lambda: finished_count(meal_ids) >= count, timeout=DRAIN_TIMEOUT, interval=0.05, message=message)


def kill_a_busy_worker(tries=20):
    """SIGKILL the worker of an active parse job; return (pid, jobs it left active).

    A local parse takes milliseconds, so the job may finish between reading its worker
    and the signal. The kill is repeated on another worker until one job is stranded.
    """
    for _ in range(tries):
        worker = Job.objects.filter(queue=QUEUE, state=JobState.ACTIVE).values_list("worker", flat=True).first()
        if not worker:
            time.sleep(0.01)
            continue
        pid = int(worker.rsplit(":", 1)[-1])
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        stranded = stranded_jobs([pid])
        if stranded:
            return pid, stranded
    raise AssertionError(f"no kill in {tries} tries left a parse job active")


def test_killed_worker_loses_no_meal(processes, tmp_path):
    processes.append(start_cluster(QUEUE, tmp_path, **FAST_RECOVERY))
    processes.append(start_dispatcher(tmp_path, **FAST_RECOVERY))
    meal_ids = create_meals(MEALS)
    wait_until_finished(meal_ids, 100, "100 meals parsed before the kill")

    _, stranded = kill_a_busy_worker()
    wait_until_finished(meal_ids, MEALS, "every meal finished after a worker was killed")

    outcomes = assert_nothing_lost(meal_ids, stranded=stranded)
    assert outcomes["completed"] == MEALS
    assert outcomes["stalled"] == len(stranded)
    assert len(stranded) == 1


def test_killed_cluster_loses_no_meal(processes, tmp_path):
    cluster = start_cluster(QUEUE, tmp_path, name="cluster-1", **FAST_RECOVERY)
    processes.append(cluster)
    processes.append(start_dispatcher(tmp_path, **FAST_RECOVERY))
    meal_ids = create_meals(MEALS)
    wait_until_finished(meal_ids, 100, "100 meals parsed before the kill")

    # SIGKILL to the process group: the main process, the sentinel and every worker.
    cluster.kill()
    stranded = set(Job.objects.filter(queue=QUEUE, state=JobState.ACTIVE).values_list("id", flat=True))
    processes.append(start_cluster(QUEUE, tmp_path, name="cluster-2", **FAST_RECOVERY))
    wait_until_finished(meal_ids, MEALS, "every meal finished after the cluster was killed")

    outcomes = assert_nothing_lost(meal_ids, stranded=stranded)
    assert outcomes["completed"] == MEALS
    assert outcomes["stalled"] == len(stranded)


def test_killed_dispatcher_loses_no_meal(processes, tmp_path):
    processes.append(start_cluster(QUEUE, tmp_path, **FAST_RECOVERY))
    dispatcher = start_dispatcher(tmp_path, name="dispatcher-1", **FAST_RECOVERY)
    processes.append(dispatcher)
    meal_ids = create_meals(MEALS)
    wait_until_finished(meal_ids, 100, "100 meals parsed before the kill")

    # With the dispatcher gone, nothing recovers the stranded job until a new one starts.
    dispatcher.kill()
    _, stranded = kill_a_busy_worker()
    time.sleep(FAST_RECOVERY["MEAL_PROCESSING_TIMEOUT"] + FAST_RECOVERY["JOB_LEASE_GRACE_SECONDS"] + 1)
    assert Job.objects.get(pk=next(iter(stranded))).state == JobState.ACTIVE
    processes.append(start_dispatcher(tmp_path, name="dispatcher-2", **FAST_RECOVERY))
    wait_until_finished(meal_ids, MEALS, "every meal finished after the dispatcher was replaced")

    outcomes = assert_nothing_lost(meal_ids, stranded=stranded)
    assert outcomes["completed"] == MEALS
    assert outcomes["stalled"] == len(stranded)
