"""Start the web server, one Django-Q2 cluster per queue and the dispatcher, for development."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server, every queue's cluster and the dispatcher until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)),
                            help="Web server port (default: PORT or 8000).")
        parser.add_argument("--no-web", action="store_true", help="Start only the clusters and the dispatcher.")

    def handle(self, *args, port, no_web, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        processes = {}
        for queue in settings.JOB_QUEUES:
            env = {**os.environ, "Q_CLUSTER_NAME": queue}
            processes[f"cluster {queue}"] = subprocess.Popen([*manage, "qcluster"], env=env, start_new_session=True)
        processes["dispatcher"] = subprocess.Popen([*manage, "run_dispatcher"], start_new_session=True)
        if not no_web:
            # --insecure serves static files (admin, API docs) with DEBUG off, as a
            # development server should.
            processes["web"] = subprocess.Popen(
                [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"], start_new_session=True
            )
            self.stdout.write(f"Web server on http://127.0.0.1:{port}/ (admin /admin/, API docs /api/docs)")
        self.stdout.write(
            "Started a Django-Q2 cluster for each queue (" + ", ".join(settings.JOB_QUEUES) + ") and the dispatcher. "
            "Press Ctrl-C to stop."
        )

        failed = []
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with status {process.returncode}; stopping the rest.")
                        failed.append(name)
                        stopping.append(True)
                        break
                time.sleep(0.5)
        finally:
            # Signal each main process only: Django-Q2 lets running tasks finish on SIGTERM,
            # while a signal to the whole process group would kill its workers mid-task.
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        if failed:
            raise SystemExit(1)
