"""The whole product in subprocesses (web server, cluster, dispatcher) and an HTTP client."""

import json
import subprocess
import sys
import urllib.error
import urllib.request

from tests.processes import ROOT, Process, free_port, start_cluster, start_dispatcher, wait_for, worker_env

QUEUE = "meal-processing"
# A short timeout and lease grace let the dispatcher call a job stalled after 11 s.
FAST_RECOVERY = {
    "MEAL_PROCESSING_TIMEOUT": 10,
    "MEAL_PROCESSING_WORKERS": 3,
    "JOB_LEASE_GRACE_SECONDS": 1,
    "OPENAI_API_KEY": "",
    "JOB_RATE_LIMIT_LOCAL_PARSER": "false",
}


class WebServer:
    """`manage.py runserver` on a free loopback port, with a JSON client for the API."""

    def __init__(self, tmp_path, **env):
        self.port = free_port()
        self.process = Process(
            ["runserver", f"127.0.0.1:{self.port}", "--noreload", "--skip-checks"],
            env=worker_env(**env), log_path=tmp_path / "web.log",
        )
        wait_for(self._listening, timeout=30, message="the web server to listen")

    def _listening(self):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/openapi.json", timeout=2).close()
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def request(self, method, path, *, token, body=None):
        """Send a request and return (HTTP status, decoded JSON body)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def post_meal(self, description, *, token):
        return self.request("POST", "/api/meals/parse", token=token, body={"description": description})


def start_stack(tmp_path, processes, **env):
    """Start a web server, a meal-processing cluster and a dispatcher; return the web server."""
    web = WebServer(tmp_path, **FAST_RECOVERY, **env)
    processes.append(web.process)
    processes.append(start_cluster(QUEUE, tmp_path, **FAST_RECOVERY, **env))
    processes.append(start_dispatcher(tmp_path, **FAST_RECOVERY, **env))
    return web


def manage(*args, env):
    """Run a manage.py command to completion and return its standard output."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT, env=worker_env(**env), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout
