from maintenance.management.commands._base import MaintenanceCommand
from maintenance.tasks import CLEAN_TEMP_FILES


class Command(MaintenanceCommand):
    help = "Remove regular files older than MAINTENANCE_TEMP_MAX_AGE_HOURS from MAINTENANCE_TEMP_DIR, never following symbolic links."
    task = CLEAN_TEMP_FILES
