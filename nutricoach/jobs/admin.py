"""The staff side of the job runtime: job list and pages, actions, and the queue overview.

Staff with `jobs.view_job` see everything. Retry, replay, cancel and discard need
`jobs.change_job`; pause and resume need `jobs.change_queuestate`. Every action is
written to Django's admin log against the job or queue it changed.
"""

import json

from django.contrib import admin, messages
from django.urls import path, reverse
from django.utils.html import format_html

from nutricoach.jobs import dashboard
from nutricoach.jobs.dashboard import OPERATIONS, PAUSE_PERMISSION, can_operate, run_operation
from nutricoach.jobs.models import (
    DispatcherHeartbeat,
    Job,
    JobAttempt,
    JobLog,
    JobState,
    QueueOverview,
    QueueState,
)

class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    fields = ["number", "worker", "started_at", "finished_at", "duration", "outcome", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="duration")
    def duration(self, attempt):
        if attempt.finished_at is None:
            return "-"
        return f"{(attempt.finished_at - attempt.started_at).total_seconds():.3f} s"


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


class OwnerFilter(admin.SimpleListFilter):
    """Filter by owner id; the owner column links here, so no list of every user is built."""

    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        choices = [("none", "No owner (system jobs)")]
        value = self.value()
        if value and value.isdigit():
            owner = model_admin.model.owner.field.related_model.objects.filter(pk=value).first()
            choices.append((value, str(owner) if owner else f"user {value} (not found)"))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(owner__isnull=True)
        if value and value.isdigit():
            return queryset.filter(owner_id=int(value))
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "task", "state_label", "progress", "attempts_made", "max_attempts",
                    "owner_link", "priority", "run_at", "created_at", "finished_at"]
    list_filter = ["queue", "state", DeadLetterFilter, "task", "error_kind", OwnerFilter, "created_at", "finished_at"]
    search_fields = ["=id", "idempotency_key", "owner__email"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    # Counting the whole table again beside every filtered count is slow on a large table.
    show_full_result_count = False
    inlines = [JobAttemptInline, JobLogInline]
    actions = ["retry_now", "replay", "cancel", "discard"]
    fieldsets = [
        (None, {"fields": ["id", "queue", "task", "owner", "state_label", "progress_bar", "priority",
                           "attempts_summary", "idempotency_key", "rate_limited"]}),
        ("Times", {"fields": ["created_at", "run_at", "started_at", "finished_at", "dead_lettered_at",
                              "updated_at", "lease_expires_at", "wakeup_sent_at", "worker"]}),
        ("Payload", {"fields": ["payload_json", "backoff"]}),
        ("Outcome", {"fields": ["result_json", "error_kind", "error_text"]}),
    ]
    readonly_fields = [
        "id", "queue", "task", "owner", "state_label", "progress_bar", "priority", "attempts_summary",
        "idempotency_key", "rate_limited", "created_at", "run_at", "started_at", "finished_at",
        "dead_lettered_at", "updated_at", "lease_expires_at", "wakeup_sent_at", "worker", "payload_json",
        "backoff", "result_json", "error_kind", "error_text",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A job page is never saved as a form: saving would write every column back and
        # race the worker running the job. Changes go through the actions, which need it.
        if obj is not None:
            return False
        return can_operate(request)

    def get_urls(self):
        urls = [
            path("<uuid:job_id>/operate/<str:operation>/", self.admin_site.admin_view(self.operate_view),
                 name="jobs_job_operate"),
        ]
        return urls + super().get_urls()

    def operate_view(self, request, job_id, operation):
        return dashboard.job_operate(request, self, job_id, operation)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if job is not None and can_operate(request):
            extra_context["job_operations"] = [op for op in OPERATIONS.values() if op.applies_to(job)]
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="state", ordering="state")
    def state_label(self, job):
        if job.is_dead_letter:
            return "failed (dead letter)"
        return job.state

    @admin.display(description="owner", ordering="owner__email")
    def owner_link(self, job):
        if job.owner_id is None:
            return "-"
        url = reverse("admin:jobs_job_changelist") + f"?owner={job.owner_id}"
        return format_html('<a href="{}" title="Jobs of this owner">{}</a>', url, job.owner)

    @admin.display(description="progress")
    def progress_bar(self, job):
        return format_html('<progress max="100" value="{}"></progress> {} %', job.progress, job.progress)

    @admin.display(description="attempts")
    def attempts_summary(self, job):
        return f"{job.attempts_made} of {job.max_attempts}"

    @admin.display(description="payload")
    def payload_json(self, job):
        return format_html("<pre>{}</pre>", json.dumps(job.payload, indent=2, sort_keys=True))

    @admin.display(description="result")
    def result_json(self, job):
        if job.result is None:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(job.result, indent=2, sort_keys=True))

    @admin.display(description="error")
    def error_text(self, job):
        if not job.error:
            return "-"
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', job.error)

    def _run_bulk(self, request, queryset, operation_name):
        operation = OPERATIONS[operation_name]
        changed = sum(run_operation(request, self, operation, job) for job in queryset)
        skipped = queryset.count() - changed
        message = f"{operation.label}: {changed} jobs changed."
        if skipped:
            message += f" {skipped} skipped because their state does not allow it."
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)

    @admin.action(description="Run the selected delayed jobs now", permissions=["change"])
    def retry_now(self, request, queryset):
        self._run_bulk(request, queryset, "retry_now")

    @admin.action(description="Replay the selected failed or cancelled jobs (one more attempt)", permissions=["change"])
    def replay(self, request, queryset):
        self._run_bulk(request, queryset, "replay")

    @admin.action(description="Cancel the selected waiting or delayed jobs", permissions=["change"])
    def cancel(self, request, queryset):
        self._run_bulk(request, queryset, "cancel")

    @admin.action(description="Discard the selected dead letters", permissions=["change"])
    def discard(self, request, queryset):
        self._run_bulk(request, queryset, "discard")


@admin.register(QueueState)
class QueueStateAdmin(admin.ModelAdmin):
    list_display = ["name", "paused", "paused_at", "updated_at"]
    actions = ["pause", "resume"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Pausing goes through services.set_paused, which also wakes a resumed queue.
        return obj is None and request.user.has_perm(PAUSE_PERMISSION)

    @admin.action(description="Pause the selected queues", permissions=["change"])
    def pause(self, request, queryset):
        for state in queryset:
            dashboard.queue_set_paused(request, self, state.name, paused=True)

    @admin.action(description="Resume the selected queues", permissions=["change"])
    def resume(self, request, queryset):
        for state in queryset:
            dashboard.queue_set_paused(request, self, state.name, paused=False)


@admin.register(QueueOverview)
class QueueOverviewAdmin(admin.ModelAdmin):
    """The queue overview page in place of a change list: counts, clusters, charts, pause buttons."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("jobs.view_job") or request.user.has_perm("jobs.view_queueoverview")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("", self.admin_site.admin_view(self.changelist_view), name="jobs_queueoverview_changelist"),
            path("<str:queue>/<str:switch>/", self.admin_site.admin_view(self.pause_view),
                 name="jobs_queueoverview_pause"),
        ]

    def changelist_view(self, request, extra_context=None):
        return dashboard.queue_overview(request, self)

    def pause_view(self, request, queue, switch):
        return dashboard.queue_pause_switch(request, self, queue, switch)


@admin.register(DispatcherHeartbeat)
class DispatcherHeartbeatAdmin(admin.ModelAdmin):
    """Each dispatcher writes its own row; a stale row can be deleted once it stopped."""

    list_display = ["name", "beat_at"]
    readonly_fields = ["name", "beat_at"]

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the job runtime writes; staff look at them but never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdmin):
    list_display = ["job", "number", "queue", "worker", "started_at", "finished_at", "outcome"]
    list_filter = ["queue", "outcome", "rate_limited"]
    search_fields = ["=job__id", "worker"]
    date_hierarchy = "started_at"


@admin.register(JobLog)
class JobLogAdmin(ReadOnlyAdmin):
    list_display = ["job", "created_at", "level", "message"]
    list_filter = ["level"]
    search_fields = ["=job__id", "message"]
