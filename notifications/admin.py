from django.contrib import admin, messages

from notifications import services
from notifications.models import DeliveryStatus, NotificationLog


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("unknown", "Outcome unknown"), ("failed", "Failed")]

    def queryset(self, request, queryset):
        if self.value() in (DeliveryStatus.UNKNOWN, DeliveryStatus.FAILED):
            return queryset.filter(status=self.value())
        return queryset


@admin.register(NotificationLog)
class NotificationLogAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "period_key", "status", "channel", "sent_at", "attempts", "updated_at"]
    list_filter = [NeedsAttentionFilter, "status", "kind", "channel"]
    search_fields = ["user__email", "period_key", "recipient"]
    raw_id_fields = ["user"]
    readonly_fields = [field.name for field in NotificationLog._meta.fields]
    actions = ["resend"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Rows change only through the send job and the resend action, which needs this permission.
        return request.user.has_perm("notifications.change_notificationlog")

    @admin.action(
        description="Resend the selected notifications whose outcome is unknown or that failed",
        permissions=["change"],
    )
    def resend(self, request, queryset):
        resent = 0
        for log in queryset:
            result = services.notification_resend(log_id=log.pk)
            if result is None:
                continue
            self.log_change(request, log, f"Resend requested as job {result.job.id} (status was {log.status}).")
            resent += 1
        skipped = len(queryset) - resent
        self.message_user(request, f"{resent} notifications enqueued for resending.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} notifications were not resent because they were sent, skipped or are being sent.",
                messages.WARNING,
            )
