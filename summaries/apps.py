from django.apps import AppConfig


class SummariesConfig(AppConfig):
    name = "summaries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from summaries import signals  # noqa: F401  (connects the meal signal handlers)
