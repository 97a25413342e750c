"""Real worker processes for tests: Django-Q2 clusters and the dispatcher.

They run against the test database, so tests that use them need `transactional_db`.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url():
    """Return a DATABASE_URL for the database the running tests use."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(**overrides):
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "NUTRICOACH_DATA_DIR": str(settings.DATA_DIR),
        "JOB_EXTRA_TASK_MODULES": "tests.jobtasks",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class Process:
    """A manage.py subprocess whose output goes to a file, stopped by pid."""

    def __init__(self, args, *, env, log_path):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self):
        return self.popen.pid

    def output(self):
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout=30):
        """Send SIGTERM to the main process only, as a supervisor should, and wait."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self):
        """SIGKILL the whole process group (the cluster's workers included)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=10)
        self._log.close()


def start_cluster(queue, tmp_path, name=None, **env):
    name = name or queue
    return Process(["qcluster"], env=worker_env(Q_CLUSTER_NAME=queue, **env), log_path=tmp_path / f"{name}.log")


def start_dispatcher(tmp_path, name="dispatcher", **env):
    return Process(["run_dispatcher", "--interval", "0.2"], env=worker_env(**env), log_path=tmp_path / f"{name}.log")


def wait_for(predicate, *, timeout, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
