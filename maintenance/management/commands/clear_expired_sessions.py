from maintenance.management.commands._base import MaintenanceCommand
from maintenance.tasks import CLEAR_SESSIONS


class Command(MaintenanceCommand):
    help = "Remove expired sessions from the configured session store, in batches."
    task = CLEAR_SESSIONS
