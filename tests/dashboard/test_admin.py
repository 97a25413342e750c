from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone

from nutricoach.jobs import services
from nutricoach.jobs.models import Job, JobAttempt, JobLog, JobState, QueueState
from nutricoach.jobs.runner import run_until_idle
from tests.dashboard.conftest import grant, logged_in_client
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:jobs_job_changelist"
OVERVIEW = "admin:jobs_queueoverview_changelist"


def job_page(job):
    return reverse("admin:jobs_job_change", args=[job.pk])


def operate_url(job, operation):
    return reverse("admin:jobs_job_operate", kwargs={"job_id": job.pk, "operation": operation})


def pause_url(queue, switch):
    return reverse("admin:jobs_queueoverview_pause", kwargs={"queue": queue, "switch": switch})


def dead_letter(**fields):
    now = timezone.now()
    return JobFactory(
        state=JobState.FAILED, finished_at=now, dead_lettered_at=now, attempts_made=3,
        error="TerminalError: the input can never be processed", error_kind="terminal", **fields,
    )


def log_entries(obj):
    return list(LogEntry.objects.filter(object_id=str(obj.pk)).order_by("id"))


# Access


@pytest.mark.parametrize("url_name", [CHANGELIST, OVERVIEW])
def test_anonymous_redirected_to_login(client, url_name):
    url = reverse(url_name)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("url_name", [CHANGELIST, OVERVIEW])
def test_plain_user_redirected_to_login(plain_user, url_name):
    response = logged_in_client(plain_user).get(reverse(url_name))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_plain_user_cannot_operate_job(plain_user):
    job = JobFactory(state=JobState.WAITING)

    response = logged_in_client(plain_user).post(operate_url(job, "cancel"))

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert log_entries(job) == []


def test_staff_without_permissions_gets_403(db):
    staff = UserFactory(is_staff=True)

    response = logged_in_client(staff).get(reverse(OVERVIEW))

    assert response.status_code == 403


def test_admin_index_links_overview(staff_viewer):
    response = logged_in_client(staff_viewer).get(reverse("admin:index"))

    assert response.status_code == 200
    assert reverse(OVERVIEW) in response.content.decode()


def test_viewer_sees_list_without_actions(staff_viewer):
    JobFactory(state=JobState.DELAYED)

    response = logged_in_client(staff_viewer).get(reverse(CHANGELIST))

    assert response.status_code == 200
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices] if response.context.get("action_form") else []
    assert "retry_now" not in actions
    assert "discard" not in actions


def test_viewer_sees_job_page_without_buttons(staff_viewer):
    job = dead_letter()

    response = logged_in_client(staff_viewer).get(job_page(job))

    assert response.status_code == 200
    body = response.content.decode()
    assert "TerminalError: the input can never be processed" in body
    assert 'id="job-operations"' not in body
    assert "_save" not in body


def test_viewer_cannot_operate_job(staff_viewer):
    job = dead_letter()

    response = logged_in_client(staff_viewer).post(operate_url(job, "replay"))

    assert response.status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert log_entries(job) == []


def test_viewer_bulk_action_is_rejected(staff_viewer):
    job = JobFactory(state=JobState.WAITING)

    response = logged_in_client(staff_viewer).post(
        reverse(CHANGELIST), {"action": "cancel", "_selected_action": [str(job.pk)]}
    )

    # The admin treats an action the user may not run as no action at all.
    assert response.status_code in (200, 302)
    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert log_entries(job) == []


def test_viewer_cannot_pause_queue(staff_viewer):
    response = logged_in_client(staff_viewer).post(pause_url("maintenance", "pause"))

    assert response.status_code == 403
    assert not QueueState.objects.filter(name="maintenance", paused=True).exists()


def test_viewer_overview_has_no_pause_buttons(staff_viewer):
    response = logged_in_client(staff_viewer).get(reverse(OVERVIEW))

    assert response.status_code == 200
    assert pause_url("maintenance", "pause") not in response.content.decode()
    assert response.context["can_pause"] is False


def test_operator_may_cancel_but_not_pause(staff_operator):
    job = JobFactory(state=JobState.WAITING)
    client = logged_in_client(staff_operator)

    cancel = client.post(operate_url(job, "cancel"))
    pause = client.post(pause_url("maintenance", "pause"))

    assert cancel.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert pause.status_code == 403
    assert not QueueState.objects.filter(paused=True).exists()


def test_operate_rejects_get(superuser):
    job = JobFactory(state=JobState.WAITING)

    response = logged_in_client(superuser).get(operate_url(job, "cancel"))

    assert response.status_code == 405
    job.refresh_from_db()
    assert job.state == JobState.WAITING


def test_operate_unknown_operation_is_404(superuser):
    job = JobFactory(state=JobState.WAITING)

    response = logged_in_client(superuser).post(operate_url(job, "explode"))

    assert response.status_code == 404
    job.refresh_from_db()
    assert job.state == JobState.WAITING


# Actions and their admin log entries


def run_bulk_action(client, action, *jobs):
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [str(job.pk) for job in jobs]})


def assert_logged(obj, user, message):
    entries = log_entries(obj)
    assert len(entries) == 1
    assert entries[0].user_id == user.pk
    assert entries[0].action_flag == CHANGE
    assert entries[0].change_message == message


def test_retry_now_makes_delayed_job_due(superuser):
    job = JobFactory(state=JobState.DELAYED, run_at=timezone.now() + timedelta(hours=1), attempts_made=1)

    response = run_bulk_action(logged_in_client(superuser), "retry_now", job)

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert job.run_at <= timezone.now()
    assert_logged(job, superuser, "Made the delayed job due now.")
    assert JobLog.objects.filter(job=job, message="retried now by staff").exists()


def test_replay_gives_dead_letter_one_attempt(superuser):
    job = dead_letter()

    run_bulk_action(logged_in_client(superuser), "replay", job)

    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert job.dead_lettered_at is None
    assert job.max_attempts == 4
    assert_logged(job, superuser, "Replayed with one more attempt.")
    assert JobLog.objects.filter(job=job, message="replayed by staff: by root@example.com").exists()


def test_cancel_waiting_job(superuser):
    job = JobFactory(state=JobState.WAITING)

    run_bulk_action(logged_in_client(superuser), "cancel", job)

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.finished_at is not None
    assert_logged(job, superuser, "Cancelled.")
    assert JobLog.objects.filter(job=job, message="cancelled by root@example.com").exists()


def test_cancel_skips_dead_letters_and_active_jobs(superuser):
    failed = dead_letter()
    active = JobFactory(state=JobState.ACTIVE)
    client = logged_in_client(superuser)

    response = run_bulk_action(client, "cancel", failed, active)

    assert response.status_code == 302
    failed.refresh_from_db()
    active.refresh_from_db()
    assert failed.state == JobState.FAILED
    assert active.state == JobState.ACTIVE
    assert log_entries(failed) == []
    assert log_entries(active) == []
    messages = [str(message) for message in client.get(reverse(CHANGELIST)).context["messages"]]
    assert messages == ["Cancel: 0 jobs changed. 2 skipped because their state does not allow it."]


def test_discard_dead_letter(superuser):
    job = dead_letter()

    run_bulk_action(logged_in_client(superuser), "discard", job)

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert_logged(job, superuser, "Discarded the dead letter.")
    assert JobLog.objects.filter(job=job, message="dead letter discarded by root@example.com").exists()


def test_discard_skips_waiting_job(superuser):
    job = JobFactory(state=JobState.WAITING)

    run_bulk_action(logged_in_client(superuser), "discard", job)

    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert log_entries(job) == []


def test_job_page_buttons_match_state(superuser):
    client = logged_in_client(superuser)
    delayed = JobFactory(state=JobState.DELAYED, run_at=timezone.now() + timedelta(minutes=5))
    failed = dead_letter()

    delayed_ops = [op.name for op in client.get(job_page(delayed)).context["job_operations"]]
    failed_ops = [op.name for op in client.get(job_page(failed)).context["job_operations"]]

    assert delayed_ops == ["retry_now", "cancel"]
    assert failed_ops == ["replay", "discard"]


def test_job_page_button_replays(superuser):
    job = dead_letter()

    response = logged_in_client(superuser).post(operate_url(job, "replay"))

    assert response.status_code == 302
    assert response["Location"] == job_page(job)
    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert_logged(job, superuser, "Replayed with one more attempt.")


def test_job_page_button_on_wrong_state_changes_nothing(superuser):
    job = JobFactory(state=JobState.COMPLETED)
    client = logged_in_client(superuser)

    response = client.post(operate_url(job, "cancel"), follow=True)

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert log_entries(job) == []
    assert [str(m) for m in response.context["messages"]] == [
        "Cancel does not apply to a job in state completed; nothing changed."
    ]


def test_job_page_cannot_be_saved(superuser):
    job = JobFactory(state=JobState.ACTIVE, progress=40)

    response = logged_in_client(superuser).post(job_page(job), {"progress": "0", "_save": "Save"})

    assert response.status_code == 403
    job.refresh_from_db()
    assert job.progress == 40


def test_pause_and_resume_from_overview(superuser):
    client = logged_in_client(superuser)

    paused = client.post(pause_url("meal-processing", "pause"))
    paused_state = QueueState.objects.get(name="meal-processing")
    resumed = client.post(pause_url("meal-processing", "resume"))

    assert paused.status_code == 302
    assert paused["Location"] == reverse(OVERVIEW)
    assert paused_state.paused is True
    assert resumed.status_code == 302
    state = QueueState.objects.get(name="meal-processing")
    assert state.paused is False
    assert [entry.change_message for entry in log_entries(state)] == ["Paused the queue.", "Resumed the queue."]


def test_pause_unknown_queue_is_404(superuser):
    response = logged_in_client(superuser).post(pause_url("no-such-queue", "pause"))

    assert response.status_code == 404
    assert not QueueState.objects.exists()


def test_pause_rejects_get(superuser):
    response = logged_in_client(superuser).get(pause_url("maintenance", "pause"))

    assert response.status_code == 405
    assert not QueueState.objects.exists()


def test_queue_state_pause_action_logs(superuser):
    QueueState.objects.create(name="notifications")

    logged_in_client(superuser).post(
        reverse("admin:jobs_queuestate_changelist"), {"action": "pause", "_selected_action": ["notifications"]}
    )

    state = QueueState.objects.get(name="notifications")
    assert state.paused is True
    assert [entry.change_message for entry in log_entries(state)] == ["Paused the queue."]


# Job list and job page


def changelist_ids(client, query):
    response = client.get(reverse(CHANGELIST) + query)
    assert response.status_code == 200
    return {job.pk for job in response.context["cl"].result_list}


def test_list_filters(superuser):
    owner = UserFactory()
    meal_job = JobFactory(queue="meal-processing", task="meals.parse_meal", state=JobState.WAITING, owner=owner)
    system_job = JobFactory(queue="maintenance", task="tests.noop", state=JobState.COMPLETED)
    failed = dead_letter(queue="maintenance")
    client = logged_in_client(superuser)

    assert changelist_ids(client, "?queue=meal-processing") == {meal_job.pk}
    assert changelist_ids(client, "?state=completed") == {system_job.pk}
    assert changelist_ids(client, "?task=meals.parse_meal") == {meal_job.pk}
    assert changelist_ids(client, f"?owner={owner.pk}") == {meal_job.pk}
    assert changelist_ids(client, "?owner=none") == {system_job.pk, failed.pk}
    assert changelist_ids(client, "?dead_letter=yes") == {failed.pk}


def test_list_filters_by_date(superuser):
    old = JobFactory()
    Job.objects.filter(pk=old.pk).update(created_at=datetime(2026, 1, 5, 12, tzinfo=UTC))
    new = JobFactory()
    client = logged_in_client(superuser)

    ids = changelist_ids(client, "?created_at__year=2026&created_at__month=1&created_at__day=5")

    assert ids == {old.pk}
    assert new.pk not in ids


def test_search_by_job_id(superuser):
    wanted = JobFactory()
    JobFactory()
    client = logged_in_client(superuser)

    assert changelist_ids(client, f"?q={wanted.pk}") == {wanted.pk}
    assert changelist_ids(client, "?q=not-a-uuid") == set()


def test_job_page_shows_details(superuser):
    job = dead_letter(payload={"meal_id": 41}, progress=70)
    started = timezone.now() - timedelta(seconds=5)
    JobAttempt.objects.create(job=job, queue=job.queue, number=1, worker="host:1", started_at=started,
                              finished_at=started + timedelta(seconds=2), outcome="terminal", error="boom")
    JobLog.objects.create(job=job, message="parsing meal 41 with the local parser")

    response = logged_in_client(superuser).get(job_page(job))

    body = response.content.decode()
    assert response.status_code == 200
    assert "&quot;meal_id&quot;: 41" in body
    assert '<progress max="100" value="70">' in body
    assert "failed (dead letter)" in body
    assert "2.000 s" in body
    assert "parsing meal 41 with the local parser" in body
    assert "3 of 3" in body


# Overview


def test_overview_shows_queue_counts(superuser):
    JobFactory.create_batch(2, queue="notifications", state=JobState.WAITING,
                            run_at=timezone.now() - timedelta(minutes=3))
    dead_letter(queue="notifications")
    QueueState.objects.create(name="notifications", paused=True)

    response = logged_in_client(superuser).get(reverse(OVERVIEW))

    assert response.status_code == 200
    rows = {row["metrics"].name: row for row in response.context["queues"]}
    assert rows["notifications"]["metrics"].waiting == 2
    assert rows["notifications"]["metrics"].dead_lettered == 1
    assert rows["notifications"]["metrics"].paused is True
    assert rows["notifications"]["oldest_waiting_age"].startswith("3 min")
    body = response.content.decode()
    assert pause_url("notifications", "resume") in body
    assert pause_url("maintenance", "pause") in body


def test_overview_charts_count_attempts(superuser):
    job = JobFactory(queue="maintenance")
    now = timezone.now()
    for number, outcome in enumerate(["completed", "completed", "retryable", "terminal"], start=1):
        JobAttempt.objects.create(job=job, queue="maintenance", number=number, started_at=now - timedelta(seconds=30),
                                  finished_at=now - timedelta(seconds=20), outcome=outcome)
    JobAttempt.objects.create(job=job, queue="maintenance", number=5, started_at=now - timedelta(hours=3),
                              finished_at=now - timedelta(hours=3), outcome="completed")
    client = logged_in_client(superuser)

    response = client.get(reverse(OVERVIEW))
    other_queue = client.get(reverse(OVERVIEW) + "?queue=notifications")

    hour_chart, day_chart = [str(chart["svg"]) for chart in response.context["charts"]]
    assert 'aria-label="Last hour, per minute: 2 completed, 2 failed"' in hour_chart
    assert 'aria-label="Last day, per hour: 3 completed, 2 failed"' in day_chart
    assert "<script" not in hour_chart
    assert 'aria-label="Last hour, per minute: 0 completed, 0 failed"' in str(other_queue.context["charts"][0]["svg"])


def test_overview_unknown_chart_queue_is_404(superuser):
    response = logged_in_client(superuser).get(reverse(OVERVIEW) + "?queue=nope")

    assert response.status_code == 404


def test_overview_lists_dispatchers(superuser):
    from nutricoach.jobs.models import DispatcherHeartbeat

    DispatcherHeartbeat.objects.create(name="host-a:123", beat_at=timezone.now() - timedelta(seconds=90))

    response = logged_in_client(superuser).get(reverse(OVERVIEW))

    assert response.context["dispatchers"][0]["name"] == "host-a:123"
    assert response.context["dispatchers"][0]["age"] == "1 min 30 s"


def test_staff_with_view_permission_only_sees_overview(db):
    staff = grant(UserFactory(is_staff=True), "view_job")

    response = logged_in_client(staff).get(reverse(OVERVIEW))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/admin/jobs/jobattempt/", "/admin/jobs/joblog/", "/admin/maintenance/maintenancelock/"]
)
def test_runtime_rows_listed_read_only(superuser, path):
    client = logged_in_client(superuser)
    job = services.enqueue("tests.noop").job
    run_until_idle("maintenance")

    response = client.get(path)

    assert response.status_code == 200
    assert response.context["has_add_permission"] is False
    if path.endswith("jobattempt/"):
        assert str(job.pk).encode() in response.content
