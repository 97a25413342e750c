from maintenance.management.commands._base import MaintenanceCommand
from maintenance.tasks import ARCHIVE_MEALS


class Command(MaintenanceCommand):
    help = "Archive meals eaten more than MAINTENANCE_MEAL_ARCHIVE_AFTER_DAYS days ago; their daily summaries stay."
    task = ARCHIVE_MEALS
