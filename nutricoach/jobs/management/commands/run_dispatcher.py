import signal

from django.core.management.base import BaseCommand

from nutricoach.jobs import dispatcher


class Command(BaseCommand):
    help = "Run the job dispatcher: wake delayed jobs, recover stalled jobs and lost wake-ups."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5, help="Seconds between passes (default 0.5).")
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args, interval, once, **options):
        if interval <= 0:
            self.stderr.write(f"--interval must be positive, got {interval}.")
            raise SystemExit(2)
        if once:
            self.stdout.write(str(dispatcher.run_pass()))
            return

        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        dispatcher.run_forever(interval=interval, stop=lambda: bool(stopping))
