from maintenance.management.commands._base import MaintenanceCommand
from maintenance.tasks import PRUNE_JOB_HISTORY


class Command(MaintenanceCommand):
    help = "Delete finished jobs and Django-Q2 task rows past settings.JOB_RETENTION."
    task = PRUNE_JOB_HISTORY
