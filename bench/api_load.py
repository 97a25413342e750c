"""API throughput and latency under concurrent load, beside a minimal Ninja baseline.

    .venv/bin/python bench/api_load.py [--backend postgres|embedded|both] [--seconds 10]

For each backend it starts gunicorn (2 sync workers) on a free loopback port and drives
it from a second process with 16 concurrent connections, one scenario at a time:

- POST /api/meals/parse and GET /api/jobs/{id}: the product's endpoints;
- POST /minimal/meals and GET /minimal/jobs/{id}: the baseline (bench/baseline_urls.py),
  the same writes and read with nothing else, served by the same gunicorn.

postgres: a scratch database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/nc_bench_api, dropped and created here) and a Redis
server the benchmark starts on a free port. embedded: SQLite and the ORM broker in a
temporary data folder. No workers run, so jobs stay waiting.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, percentile, recreate_database, start_redis  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nc_bench_api"
CONNECTIONS = 16
DESCRIPTION = "2 scrambled eggs, a slice of whole wheat toast with butter and a cup of orange juice"






# ---------------------------------------------------------------- load generator process


def request(connection, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, data


def run_load(port, token, method, path_template, job_ids, seconds, expected):
    latencies, errors = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    body = json.dumps({"description": DESCRIPTION}) if method == "POST" else None

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, failures = [], 0
        while time.monotonic() < deadline:
            path = path_template.format(job_id=random.choice(job_ids)) if job_ids else path_template
            started = time.perf_counter()
            try:
                status, _ = request(connection, method, path, token, body)
            except (OSError, http.client.HTTPException):
                connection.close()
                failures += 1
                continue
            mine.append((time.perf_counter() - started) * 1000)
            if status != expected:
                failures += 1
        with lock:
            latencies.extend(mine)
            errors.append(failures)

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "errors": sum(errors),
        "requests": len(latencies),
    }


def loadgen(port, token, seconds):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seeds = {}
    for prefix, path in (("api", "/api/meals/parse"), ("minimal", "/minimal/meals")):
        ids = []
        for _ in range(100):
            status, data = request(connection, "POST", path, token, json.dumps({"description": DESCRIPTION}))
            if status != 202:
                raise SystemExit(f"seeding {path} returned HTTP {status}: {data[:300]!r}")
            ids.append(json.loads(data)["job_id"])
        seeds[prefix] = ids
    scenarios = [
        ("POST /api/meals/parse", "POST", "/api/meals/parse", None, 202),
        ("POST minimal", "POST", "/minimal/meals", None, 202),
        ("GET /api/jobs/{id}", "GET", "/api/jobs/{job_id}", seeds["api"], 200),
        ("GET minimal", "GET", "/minimal/jobs/{job_id}", seeds["minimal"], 200),
    ]
    results = {}
    for name, method, path, ids, expected in scenarios:
        run_load(port, token, method, path, ids, 1.0, expected)  # warm-up
        results[name] = run_load(port, token, method, path, ids, seconds, expected)
    return results


# ---------------------------------------------------------------- orchestration




def wait_for_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def run_backend(backend, seconds):
    workdir = Path(tempfile.mkdtemp(prefix=f"nc-api-{backend}-"))
    env = {
        **os.environ,
        "NUTRICOACH_DATA_DIR": str(workdir),
        "ROOT_URLCONF": "bench.baseline_urls",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    for key in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY"):
        env.pop(key, None)
    redis_server = None
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    if backend == "postgres":
        recreate_database(database_url)
        redis_server, redis_url = start_redis(workdir)
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url)

    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "createcachetable"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "shell", "-c",
         "from accounts.models import User; User.objects.get_or_create(email='load@example.com')"],
        cwd=ROOT, env=env, check=True,
    )
    token = subprocess.run(
        [*manage, "create_api_token", "load@example.com"], cwd=ROOT, env=env, check=True, capture_output=True,
        text=True,
    ).stdout.strip()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "nutricoach.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        wait_for_port(port)
        output = subprocess.run(
            [sys.executable, __file__, "--loadgen", str(port), "--token", token, "--seconds", str(seconds)],
            cwd=ROOT, capture_output=True, text=True,
        )
        if output.returncode != 0:
            raise SystemExit(f"load generator failed:\n{output.stderr[-3000:]}")
        return json.loads(output.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(timeout=30)
        if redis_server is not None:
            redis_server.kill()
            recreate_database(database_url)
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgres", "embedded", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per scenario (default 10)")
    parser.add_argument("--loadgen", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.loadgen:
        print(json.dumps(loadgen(args.loadgen, args.token, args.seconds)))
        return

    backends = ["postgres", "embedded"] if args.backend == "both" else [args.backend]
    print(f"gunicorn 2 sync workers, {CONNECTIONS} connections, {args.seconds:.0f} s per scenario, "
          f"{os.cpu_count()} cores")
    for backend in backends:
        results = run_backend(backend, args.seconds)
        print(f"\n{backend}")
        print(f"{'scenario':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'x baseline':>11}")
        for name, result in results.items():
            baseline = results["POST minimal" if name.startswith("POST") else "GET minimal"]
            ratio = result["requests_per_second"] / baseline["requests_per_second"]
            print(f"{name:<24} {result['requests_per_second']:>8.0f} {result['p50_ms']:>8.1f} "
                  f"{result['p99_ms']:>8.1f} {result['errors']:>7} {ratio:>11.2f}")


if __name__ == "__main__":
    main()
