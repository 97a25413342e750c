"""End to end: meals posted through the API and parsed by the local parser on 2 workers.

    .venv/bin/python bench/e2e_meals.py [--meals 1000] [--backend postgres|embedded] [--csv FILE]

It starts gunicorn (2 sync workers), one meal-processing cluster with 2 workers and the
dispatcher, posts the meals from 8 concurrent connections as fast as the server takes
them, and waits until every parse job has finished. It prints the time to drain, the
submit-to-completed latency (job created_at to finished_at) at p50 and p99, and the
resident memory of each process at idle and its peak under load.

postgres: a scratch database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/nc_bench_e2e, dropped and created here) and a private
Redis on a free port. embedded: SQLite and the ORM broker in a temporary folder.
Descriptions come from --csv (column meal_description) when given, else from a small
built-in list.
"""

import argparse
import csv
import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, percentile, recreate_database, start_redis  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nc_bench_e2e"
BUILT_IN = [
    "2 scrambled eggs, a slice of whole wheat toast and a cup of orange juice",
    "a bowl of oatmeal with a banana and a tablespoon of honey",
    "150g grilled chicken breast with a cup of white rice and steamed broccoli",
    "a large apple and a handful of almonds",
    "2 slices of pepperoni pizza and a can of cola",
    "a cup of greek yogurt with half a cup of blueberries",
]






def process_tree(pid):
    """Return pid and all its descendants, read from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def rss_mib(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Stack:
    """The web server, the meal-processing cluster and the dispatcher of one backend."""

    def __init__(self, backend, workdir):
        self.backend = backend
        self.workdir = workdir
        self.env = {
            **{key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY")},
            "NUTRICOACH_DATA_DIR": str(workdir),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "MEAL_PROCESSING_WORKERS": "2",
        }
        self.redis = None
        self.database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
        self.processes = {}

    def start(self):
        if self.backend == "postgres":
            recreate_database(self.database_url)
            self.redis, redis_url = start_redis(self.workdir)
            self.env.update(DATABASE_URL=self.database_url, REDIS_URL=redis_url)

        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        subprocess.run([*manage, "createcachetable"], cwd=ROOT, env=self.env, check=True)
        subprocess.run(
            [*manage, "shell", "-c",
             "from accounts.models import User; User.objects.get_or_create(email='e2e@example.com')"],
            cwd=ROOT, env=self.env, check=True, capture_output=True,
        )
        self.token = subprocess.run(
            [*manage, "create_api_token", "e2e@example.com"], cwd=ROOT, env=self.env, check=True,
            capture_output=True, text=True,
        ).stdout.strip()

        self.port = free_port()
        log = open(self.workdir / "processes.log", "ab")
        common = {"cwd": ROOT, "stdout": log, "stderr": subprocess.STDOUT, "start_new_session": True}
        self.processes["web (gunicorn, 2 workers)"] = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "nutricoach.wsgi", "--workers", "2", "--bind",
             f"127.0.0.1:{self.port}", "--log-level", "warning"], env=self.env, **common)
        self.processes["cluster meal-processing (2 workers)"] = subprocess.Popen(
            [*manage, "qcluster"], env={**self.env, "Q_CLUSTER_NAME": "meal-processing"}, **common)
        self.processes["dispatcher"] = subprocess.Popen([*manage, "run_dispatcher"], env=self.env, **common)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(3)  # lets the cluster start its workers

    def memory(self):
        return {name: rss_mib(process_tree(process.pid)) for name, process in self.processes.items()}

    def finished_jobs(self):
        sql = "SELECT count(*) FROM jobs_job WHERE task = 'meals.parse_meal' AND state IN ('completed', 'failed')"
        return self.query(sql)[0][0]

    def query(self, sql):
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(self.database_url) as connection:
                return connection.execute(sql).fetchall()
        with sqlite3.connect(self.workdir / "db.sqlite3") as connection:
            return connection.execute(sql).fetchall()

    def stop(self):
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
        if self.redis is not None:
            self.redis.kill()
            recreate_database(self.database_url)




def post_meal(port, token, description):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"description": description})
    connection.request("POST", "/api/meals/parse", body=body,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def load_descriptions(path):
    if path and Path(path).exists():
        with open(path, newline="") as handle:
            return [row["meal_description"] for row in csv.DictReader(handle) if row.get("meal_description")]
    return BUILT_IN


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meals", type=int, default=1000, help="meals to post (default 1000)")
    parser.add_argument("--backend", choices=["postgres", "embedded"], default="postgres")
    parser.add_argument("--csv", help="CSV of meal descriptions (column meal_description)")
    args = parser.parse_args()

    descriptions = load_descriptions(args.csv)
    workdir = Path(tempfile.mkdtemp(prefix="nc-e2e-"))
    stack = Stack(args.backend, workdir)
    try:
        stack.start()
        idle = stack.memory()
        peak = dict(idle)
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.is_set():
                for name, value in stack.memory().items():
                    peak[name] = max(peak[name], value)
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda i: post_meal(stack.port, stack.token, descriptions[i % len(descriptions)]),
                                     range(args.meals)))
        submitted = time.monotonic() - started
        while stack.finished_jobs() < args.meals and time.monotonic() - started < 1800:
            time.sleep(0.2)
        drained = time.monotonic() - started
        stop_sampling.set()
        sampler.join()

        rows = stack.query(
            "SELECT state, EXTRACT(EPOCH FROM (finished_at - created_at)) FROM jobs_job WHERE task = 'meals.parse_meal'"
            if args.backend == "postgres" else
            "SELECT state, (julianday(finished_at) - julianday(created_at)) * 86400 FROM jobs_job "
            "WHERE task = 'meals.parse_meal'"
        )
    finally:
        stack.stop()

    latencies = [float(seconds) * 1000 for state, seconds in rows if seconds is not None]
    states = {}
    for state, _ in rows:
        states[state] = states.get(state, 0) + 1
    print(f"{args.meals} meals, backend {args.backend}, {len(set(descriptions))} distinct descriptions, "
          f"{os.cpu_count()} cores")
    print(f"accepted: {statuses.count(202)}, other answers: {len(statuses) - statuses.count(202)}")
    print(f"submitted in {submitted:.1f} s ({args.meals / submitted:.0f} meals/s); "
          f"drained in {drained:.1f} s ({args.meals / drained:.0f} meals/s)")
    print(f"job states: {states}")
    print(f"submit to finished: p50 {statistics.median(latencies):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms")
    print("resident memory (MiB): idle / peak under load")
    for name in idle:
        print(f"  {name:<38} {idle[name]:>7.0f} / {peak[name]:>7.0f}")


if __name__ == "__main__":
    main()
