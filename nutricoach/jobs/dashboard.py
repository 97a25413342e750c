"""Pages on jobs: the admin's queue overview and job actions, and the owner's status page."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from meals.models import Meal
from nutricoach.jobs import charts, clusters, selectors, services
from nutricoach.jobs.api import job_status
from nutricoach.jobs.models import DispatcherHeartbeat, Job, JobState, QueueState

logger = logging.getLogger(__name__)

OPERATE_PERMISSION = "jobs.change_job"
PAUSE_PERMISSION = "jobs.change_queuestate"
PARSE_MEAL_TASK = "meals.parse_meal"
# States in which the status page keeps polling; any other state is final.
UNFINISHED_STATES = [JobState.WAITING, JobState.DELAYED, JobState.ACTIVE]
POLL_INTERVAL_MS = 1000


@dataclass(frozen=True)
class JobOperation:
    """A staff action on one job: the states it applies to and what it logs."""

    name: str
    label: str
    states: tuple
    log_message: str
    dead_letters_only: bool = False

    def applies_to(self, job):
        if self.dead_letters_only and not job.is_dead_letter:
            return False
        return job.state in self.states


OPERATIONS = {
    operation.name: operation
    for operation in [
        JobOperation("retry_now", "Run now", (JobState.DELAYED,), "Made the delayed job due now."),
        JobOperation("replay", "Replay", (JobState.FAILED, JobState.CANCELLED), "Replayed with one more attempt."),
        JobOperation("cancel", "Cancel", (JobState.WAITING, JobState.DELAYED), "Cancelled."),
        JobOperation("discard", "Discard", (JobState.FAILED,), "Discarded the dead letter.", dead_letters_only=True),
    ]
}


def can_operate(request):
    return request.user.has_perm(OPERATE_PERMISSION)


def run_operation(request, model_admin, operation, job):
    """Apply `operation` to `job` for the requesting staff member; log it and return whether it changed."""
    if not operation.applies_to(job):
        return False
    actor = request.user.get_username()
    if operation.name == "retry_now":
        changed = services.retry_now(job)
    elif operation.name == "replay":
        changed = services.replay(job, note=f"by {actor}")
    elif operation.name == "cancel":
        changed = services.cancel(job, reason=f"cancelled by {actor}")
    else:
        changed = services.cancel(job, reason=f"dead letter discarded by {actor}")

    if changed:
        model_admin.log_change(request, job, operation.log_message)
        logger.info("staff %s: %s job %s (%s)", actor, operation.name, job.id, job.task)
    return changed


def job_operate(request, model_admin, job_id, operation_name):
    """Apply one operation to one job from its admin page (POST), then go back to the page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not can_operate(request):
        raise PermissionDenied(f"Changing jobs needs the {OPERATE_PERMISSION} permission.")
    operation = OPERATIONS.get(operation_name)
    if operation is None:
        raise Http404(f"No job operation {operation_name!r}; use one of {', '.join(OPERATIONS)}.")
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise Http404(f"Job {job_id} not found.")

    if run_operation(request, model_admin, operation, job):
        model_admin.message_user(request, f"{operation.label}: done.", messages.SUCCESS)
    else:
        job.refresh_from_db()
        model_admin.message_user(
            request, f"{operation.label} does not apply to a job in state {job.state}; nothing changed.",
            messages.WARNING,
        )
    return redirect("admin:jobs_job_change", job.pk)


def queue_set_paused(request, model_admin, queue, *, paused):
    """Pause or resume `queue`, record it in the admin log and tell the staff member."""
    services.set_paused(queue, paused)
    state = QueueState.objects.get(name=queue)
    model_admin.log_change(request, state, "Paused the queue." if paused else "Resumed the queue.")
    logger.info("staff %s %s queue %s", request.user.get_username(), "paused" if paused else "resumed", queue)
    model_admin.message_user(request, f"Queue {queue} {'paused' if paused else 'resumed'}.", messages.SUCCESS)


def queue_pause_switch(request, model_admin, queue, switch):
    """Handle the overview's pause and resume buttons (POST only)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm(PAUSE_PERMISSION):
        raise PermissionDenied(f"Pausing queues needs the {PAUSE_PERMISSION} permission.")
    if queue not in settings.JOB_QUEUES:
        raise Http404(f"No queue {queue!r}; configured queues are {', '.join(settings.JOB_QUEUES)}.")
    if switch not in ("pause", "resume"):
        raise Http404(f"Unknown queue switch {switch!r}; use pause or resume.")

    queue_set_paused(request, model_admin, queue, paused=switch == "pause")
    return redirect("admin:jobs_queueoverview_changelist")


def format_age(seconds):
    """Format a number of seconds as a short age such as "42 s", "3 min 5 s" or "2 h 10 min"."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def queue_overview(request, model_admin):
    """Render the overview: per-queue counts, clusters, dispatchers and throughput charts."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("The queue overview needs the jobs.view_job permission.")
    now = timezone.now()
    chart_queue = request.GET.get("queue") or None
    if chart_queue is not None and chart_queue not in settings.JOB_QUEUES:
        raise Http404(f"No queue {chart_queue!r}; configured queues are {', '.join(settings.JOB_QUEUES)}.")

    job_list = reverse("admin:jobs_job_changelist")
    queues = []
    for metrics in selectors.queue_metrics():
        queues.append({
            "metrics": metrics,
            "oldest_waiting_age": format_age(metrics.oldest_waiting_age_seconds),
            "jobs_url": f"{job_list}?queue={metrics.name}",
            "dead_letters_url": f"{job_list}?queue={metrics.name}&dead_letter=yes",
        })
    cluster_rows = [
        {"status": status, "uptime": format_age((now - status.started_at).total_seconds()),
         "reported_age": format_age((now - status.reported_at).total_seconds())}
        for status in clusters.cluster_statuses()
    ]
    dispatchers = [
        {"name": beat.name, "beat_at": beat.beat_at, "age": format_age((now - beat.beat_at).total_seconds())}
        for beat in DispatcherHeartbeat.objects.order_by("-beat_at")[:20]
    ]
    chart_list = [
        {"title": series.title, "svg": charts.render_svg(series)}
        for series in charts.throughput_series(queue=chart_queue, now=now)
    ]

    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Queue overview",
        "opts": model_admin.model._meta,
        "queues": queues,
        "clusters": cluster_rows,
        "workers_online": sum(row["status"].workers for row in cluster_rows),
        "dispatchers": dispatchers,
        "charts": chart_list,
        "chart_queue": chart_queue,
        "queue_names": list(settings.JOB_QUEUES),
        "can_pause": request.user.has_perm(PAUSE_PERMISSION),
        "generated_at": now,
    }
    return TemplateResponse(request, "admin/jobs/queue_overview.html", context)


@login_required
def job_status_page(request, job_id):
    """Show the owner one job's state and progress; the page polls the API until it ends."""
    job = selectors.job_for_owner(job_id, request.user)
    if job is None:
        raise Http404("No such job for this account.")

    meal_id = job.payload.get("meal_id") if job.task == PARSE_MEAL_TASK else None
    meal = _owned_meal(job) if meal_id and job.state == JobState.COMPLETED else None
    context = {
        "job": job,
        "status": job_status(job),
        "is_dead_letter": job.is_dead_letter,
        "meal": meal,
        "meal_id": meal_id,
        "status_config": {
            "jobUrl": reverse("api:get_job", kwargs={"job_id": job.id}),
            "mealUrl": reverse("api:get_meal", kwargs={"meal_id": meal_id}) if isinstance(meal_id, int) else None,
            "interval": POLL_INTERVAL_MS,
            "polling": job.state in UNFINISHED_STATES,
        },
    }
    with timezone.override(request.user.zone):
        return render(request, "jobs/status.html", context)


def _owned_meal(job):
    meal_id = job.payload.get("meal_id")
    if not isinstance(meal_id, int):
        return None
    return Meal.objects.filter(pk=meal_id, owner_id=job.owner_id).prefetch_related("items").first()
