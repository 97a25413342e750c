"""Real worker processes for tests: Django-Q2 clusters and the dispatcher.

They run against the test database, so tests that use them need `transactional_db`.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A Redis server of the test's own on a free loopback port, keeping nothing on disk."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, message="private Redis to answer")

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


POSTGRESQL_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgreSQL:
    """A PostgreSQL 15 cluster of the test's own on a free loopback port.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres`
    system user and every server command runs through `runuser`. The cluster trusts
    local connections, skips fsync and lives in a temporary folder that `remove`
    deletes. Only this cluster is ever stopped: by `pg_ctl` on its own data folder.
    """

    def __init__(self):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="nc-private-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "server.log"
        self._owner = None
        if os.geteuid() == 0:
            self._owner = pwd.getpwnam("postgres")
            os.chown(self.directory, self._owner.pw_uid, self._owner.pw_gid)

    @classmethod
    def missing_requirement(cls):
        """Return why no private cluster can start here, or None when it can."""
        if not (POSTGRESQL_BIN / "initdb").exists():
            return f"PostgreSQL server binaries are not installed in {POSTGRESQL_BIN}"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root needs a postgres system user to own the private cluster"
            if shutil.which("runuser") is None:
                return "running as root needs runuser to start PostgreSQL as the postgres user"
        return None

    def _run(self, *args, check=True, timeout=60):
        command = [str(POSTGRESQL_BIN / args[0]), *args[1:]]
        if self._owner is not None:
            command = ["runuser", "-u", self._owner.pw_name, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=timeout)

    def initialise(self):
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self):
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode="fast"):
        """Stop the server; "fast" closes every session, "immediate" is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)

    def is_running(self):
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self, name):
        self.psql(f'CREATE DATABASE "{name}"', database="postgres")

    def psql(self, sql, *, database):
        """Run one SQL statement with psql and return its unaligned output rows."""
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-X", "-q", "-A",
             "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, check=True, timeout=60,
        )
        return [line for line in result.stdout.splitlines() if line]

    def url(self, database):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self):
        if self.data.exists() and self.is_running():
            self.stop(mode="immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
