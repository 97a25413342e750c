from django.contrib import admin

from maintenance.models import MaintenanceLock


@admin.register(MaintenanceLock)
class MaintenanceLockAdmin(admin.ModelAdmin):
    """Locks of running maintenance tasks; deleting one frees a lock whose holder died."""

    list_display = ["name", "holder", "acquired_at", "expires_at"]
    readonly_fields = ["name", "token", "holder", "acquired_at", "expires_at"]

    def has_add_permission(self, request):
        return False
