from django.contrib import admin, messages

from nutricoach.jobs import services
from nutricoach.jobs.models import DispatcherHeartbeat, Job, JobAttempt, JobLog, JobState, QueueState


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    fields = ["number", "worker", "started_at", "finished_at", "outcome", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class JobLogInline(admin.TabularInline):
    model = JobLog
    extra = 0
    can_delete = False
    fields = ["created_at", "level", "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class DeadLetterFilter(admin.SimpleListFilter):
    title = "dead letter"
    parameter_name = "dead_letter"

    def lookups(self, request, model_admin):
        return [("yes", "Dead letters")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(state=JobState.FAILED, dead_lettered_at__isnull=False)
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "task", "state", "progress", "attempts_made", "max_attempts", "owner",
                    "priority", "run_at", "created_at"]
    list_filter = ["queue", "state", DeadLetterFilter, "task", "error_kind", "created_at"]
    search_fields = ["=id", "idempotency_key", "owner__email"]
    date_hierarchy = "created_at"
    raw_id_fields = ["owner"]
    readonly_fields = [field.name for field in Job._meta.fields]
    inlines = [JobAttemptInline, JobLogInline]
    actions = ["retry_now", "replay", "cancel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Staff look at jobs; changes go through the actions, which need this permission.
        return request.user.has_perm("jobs.change_job")

    @admin.action(description="Run the selected delayed jobs now", permissions=["change"])
    def retry_now(self, request, queryset):
        count = sum(services.retry_now(job) for job in queryset)
        self.message_user(request, f"{count} delayed jobs made due now.")

    @admin.action(description="Replay the selected failed jobs (one more attempt)", permissions=["change"])
    def replay(self, request, queryset):
        count = sum(services.replay(job, note=f"by {request.user}") for job in queryset)
        self.message_user(request, f"{count} jobs replayed.")

    @admin.action(description="Cancel waiting or delayed jobs, or discard dead letters", permissions=["change"])
    def cancel(self, request, queryset):
        count = sum(services.cancel(job, reason=f"cancelled by {request.user}") for job in queryset)
        self.message_user(request, f"{count} jobs cancelled.", messages.SUCCESS)


@admin.register(QueueState)
class QueueStateAdmin(admin.ModelAdmin):
    list_display = ["name", "paused", "paused_at", "updated_at"]
    actions = ["pause", "resume"]

    @admin.action(description="Pause the selected queues", permissions=["change"])
    def pause(self, request, queryset):
        for state in queryset:
            services.set_paused(state.name, True)
        self.message_user(request, "Paused.")

    @admin.action(description="Resume the selected queues", permissions=["change"])
    def resume(self, request, queryset):
        for state in queryset:
            services.set_paused(state.name, False)
        self.message_user(request, "Resumed.")


@admin.register(DispatcherHeartbeat)
class DispatcherHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "beat_at"]
