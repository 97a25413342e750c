from django.apps import AppConfig


class MealsConfig(AppConfig):
    name = "meals"
    default_auto_field = "django.db.models.BigAutoField"
