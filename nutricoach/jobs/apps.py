from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "nutricoach.jobs"
    label = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from nutricoach.jobs import checks  # noqa: F401  (registers the system checks)

        # Import every app's tasks module so its @job_task handlers are registered.
        autodiscover_modules("tasks")
        for module in settings.JOB_EXTRA_TASK_MODULES:
            import_module(module)
