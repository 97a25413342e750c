"""The shared shape of the maintenance commands: --dry-run, one lock, readable errors."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from maintenance.runs import TaskLockedError, run_from_command
from maintenance.tempfiles import TempFolderError


class MaintenanceCommand(BaseCommand):
    """Run one maintenance task in this process until nothing remains."""

    task = None

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be changed and change nothing."
        )

    def handle(self, *args, dry_run=False, **options):
        try:
            run_from_command(self.task, dry_run=dry_run, write=self.stdout.write)
        except TaskLockedError as exc:
            raise CommandError(str(exc)) from exc
        except (ImproperlyConfigured, TempFolderError) as exc:
            raise CommandError(str(exc)) from exc
