from django.core.management.base import BaseCommand, CommandError

from nutricoach.jobs import schedules


class Command(BaseCommand):
    help = "Create, update or remove the Django-Q2 schedules to match nutricoach/periodic.py."

    def handle(self, *args, **options):
        try:
            report = schedules.register()
        except (ValueError, LookupError) as exc:
            raise CommandError(f"Schedules not registered: {exc}") from exc
        for action in ("created", "updated", "removed", "unchanged"):
            if report[action]:
                self.stdout.write(f"{action}: {', '.join(report[action])}")
