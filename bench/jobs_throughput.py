"""Throughput and latency of tracked jobs beside bare Django-Q2 and Celery, in one run.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/python bench/jobs_throughput.py [--jobs 20000] [--baseline-jobs 3000] [--latency-jobs 200]

Every scenario uses 2 worker processes, a Redis server the benchmark starts on a free
loopback port, and a PostgreSQL database of its own (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/nc_bench_jobs, dropped and created here):

- tracked-redis / tracked-orm: no-op tracked jobs on the Redis or the ORM broker. Drain
  throughput: the queue is paused, N jobs are enqueued, the queue is resumed, and the
  time from the first job's start to the last one's finish is measured. Latency: one
  job every 50 ms, enqueue (created_at) to completed (finished_at), from the job rows.
- q2-saved: bare Django-Q2 no-op tasks with results saved, on this project's Q2
  settings (persistent database connections, no worker recycling).
- q2-defaults: the same at Django-Q2's and Django's defaults (workers recycled every
  500 tasks, a new database connection per task); see bench/q2_defaults_settings.py.
- celery: Celery 5 with its Redis broker and no result backend; the task records its
  start and finish in Redis (one pipelined round trip).

Tracked scenarios drain --jobs jobs; the baselines, which are slower, drain
--baseline-jobs. Each scenario runs in its own process because Django-Q2 reads its
broker at import.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile, recreate_database, start_redis  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nc_bench_jobs"
WORKERS = 2




def wait_until(predicate, timeout, interval=0.02, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"worker process exited with status {process.returncode}; see the worker log")
        time.sleep(interval)
    raise TimeoutError("benchmark condition not reached in time")




# ---------------------------------------------------------------- scenario processes


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nutricoach.settings")
    import django

    django.setup()


def start_process(args, env, log):
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process):
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def worker_env():
    return {
        **os.environ,
        "Q_CLUSTER_NAME": "maintenance",
        "MAINTENANCE_WORKERS": str(WORKERS),
        "JOB_EXTRA_TASK_MODULES": "bench.bench_tasks",
    }


def run_tracked(jobs, latency_jobs, rate, log):
    setup_django()
    from django_q.brokers import get_broker

    from nutricoach.jobs import services
    from nutricoach.jobs.models import Job, JobState

    Job.objects.all().delete()
    cluster = start_process([sys.executable, "manage.py", "qcluster"], worker_env(), log)
    broker = get_broker("maintenance")
    try:
        warm = [services.enqueue("bench.noop").job.id for _ in range(50)]
        wait_until(lambda: Job.objects.filter(id__in=warm, state=JobState.COMPLETED).count() == 50, 60)

        # Drain throughput.
        services.set_paused("maintenance", True)
        Job.objects.all().delete()
        enqueue_started = time.perf_counter()
        for _ in range(jobs):
            services.enqueue("bench.noop")
        enqueue_seconds = time.perf_counter() - enqueue_started
        wait_until(lambda: broker.queue_size() == 0, 120)
        services.set_paused("maintenance", False)
        # Timestamps on the job rows time the drain, so a slow poll loses no precision.
        wait_until(lambda: Job.objects.filter(state=JobState.COMPLETED).count() == jobs, 600, 0.5, process=cluster)
        first = Job.objects.order_by("started_at").values_list("started_at", flat=True).first()
        last = Job.objects.order_by("-finished_at").values_list("finished_at", flat=True).first()
        drain_seconds = (last - first).total_seconds()

        # Latency at light load.
        Job.objects.all().delete()
        for _ in range(latency_jobs):
            services.enqueue("bench.noop")
            time.sleep(1 / rate)
        wait_until(lambda: Job.objects.filter(state=JobState.COMPLETED).count() == latency_jobs, 60)
        latencies = [
            (finished - created).total_seconds() * 1000
            for created, finished in Job.objects.values_list("created_at", "finished_at")
        ]
    finally:
        services.set_paused("maintenance", False)
        stop_process(cluster)
    return {
        "jobs_per_second": jobs / drain_seconds,
        "enqueue_per_second": jobs / enqueue_seconds,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p99_ms": percentile(latencies, 0.99),
    }


def run_q2_saved(jobs, log):
    setup_django()
    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.models import Success
    from django_q.tasks import async_task

    Success.objects.all().delete()
    broker = get_broker("maintenance")
    for _ in range(jobs):
        async_task("bench.bench_tasks.bare_noop", cluster="maintenance", broker=broker)
    cluster = start_process([sys.executable, "manage.py", "qcluster"], worker_env(), log)
    try:
        # One monitor process saves every result, so the run ends when the last is saved.
        wait_until(lambda: Success.objects.count() >= jobs, 900, 0.05, process=cluster)
        saved_at = timezone.now()
    finally:
        stop_process(cluster)
    first = Success.objects.order_by("started").values_list("started", flat=True).first()
    return {"jobs_per_second": jobs / (saved_at - first).total_seconds()}


def run_celery(jobs, log):
    import redis

    sys.path.insert(0, str(ROOT))
    from bench.celery_app import BROKER_URL, celery_noop

    client = redis.Redis.from_url(BROKER_URL)
    client.delete("bench:first", "bench:last", "bench:done")
    for _ in range(jobs):
        celery_noop.delay()
    worker = start_process(
        [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "--concurrency", str(WORKERS),
         "--pool", "prefork", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        os.environ.copy(), log,
    )
    try:
        wait_until(lambda: int(client.get("bench:done") or 0) >= jobs, 600, 0.05, process=worker)
    finally:
        stop_process(worker)
    first, last = float(client.get("bench:first")), float(client.get("bench:last"))
    return {"jobs_per_second": jobs / (last - first)}


# ---------------------------------------------------------------- orchestration




def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per tracked throughput run (default 20000)")
    parser.add_argument(
        "--baseline-jobs", type=int, default=3000, help="tasks per Django-Q2 and Celery run (default 3000)"
    )
    parser.add_argument("--latency-jobs", type=int, default=200, help="jobs in the latency run (default 200)")
    parser.add_argument("--rate", type=float, default=20.0, help="jobs a second in the latency run (default 20)")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.scenario:
        with open(os.environ["BENCH_LOG"], "ab") as log:
            if args.scenario.startswith("tracked"):
                result = run_tracked(args.jobs, args.latency_jobs, args.rate, log)
            elif args.scenario.startswith("q2-"):
                result = run_q2_saved(args.baseline_jobs, log)
            else:
                result = run_celery(args.baseline_jobs, log)
        print(json.dumps(result))
        return

    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed; the benchmark starts its own Redis.")
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    recreate_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    redis_server, redis_url = start_redis(workdir)
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NUTRICOACH_DATA_DIR": str(workdir),
        "BENCH_LOG": str(workdir / "processes.log"),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "nutricoach.settings",
        "JOB_EXTRA_TASK_MODULES": "bench.bench_tasks",
    }
    scenarios = {
        "tracked-redis": {"REDIS_URL": redis_url},
        "tracked-orm": {"REDIS_URL": ""},
        "q2-saved": {"REDIS_URL": redis_url},
        "q2-defaults": {"REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "bench.q2_defaults_settings"},
        "celery": {"BENCH_CELERY_BROKER": redis_url},
    }
    try:
        time.sleep(0.5)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=base_env, check=True)
        subprocess.run([sys.executable, "manage.py", "createcachetable"], cwd=ROOT, env=base_env, check=True)
        results = {}
        for name, extra in scenarios.items():
            print(f"running {name} ...", file=sys.stderr, flush=True)
            output = subprocess.run(
                [sys.executable, __file__, "--scenario", name, "--jobs", str(args.jobs),
                 "--baseline-jobs", str(args.baseline_jobs), "--latency-jobs", str(args.latency_jobs), "--rate", str(args.rate)],
                cwd=ROOT, env={**base_env, **extra}, capture_output=True, text=True,
            )
            if output.returncode != 0:
                sys.exit(f"{name} failed:\n{output.stderr[-3000:]}\nworker log: {workdir / 'processes.log'}")
            results[name] = json.loads(output.stdout.strip().splitlines()[-1])
    finally:
        redis_server.kill()
        recreate_database(database_url)

    celery = results["celery"]["jobs_per_second"]
    saved = results["q2-saved"]["jobs_per_second"]
    defaults = results["q2-defaults"]["jobs_per_second"]
    print(
        f"{args.jobs} tracked jobs and {args.baseline_jobs} baseline tasks per run, "
        f"{WORKERS} workers, {os.cpu_count()} cores\n"
    )
    print(
        f"{'scenario':<15} {'jobs/s':>9} {'x Celery':>9} {'x Q2 saved':>11} {'x Q2 defaults':>14} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for name, result in results.items():
        rate = result["jobs_per_second"]
        p50 = f"{result['latency_p50_ms']:.1f}" if "latency_p50_ms" in result else "-"
        p99 = f"{result['latency_p99_ms']:.1f}" if "latency_p99_ms" in result else "-"
        print(
            f"{name:<15} {rate:>9.0f} {rate / celery:>9.2f} {rate / saved:>11.1f} {rate / defaults:>14.1f} "
            f"{p50:>8} {p99:>8}"
        )
    for name in ("tracked-redis", "tracked-orm"):
        print(f"{name} enqueue: {results[name]['enqueue_per_second']:.0f} jobs/s from one process")


if __name__ == "__main__":
    main()
