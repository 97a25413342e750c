from django.contrib import admin

from notifications.models import NotificationLog


@admin.register(NotificationLog)
class NotificationLogAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "period_key", "status", "channel", "sent_at", "attempts"]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["user__email", "period_key", "recipient"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "updated_at"]
