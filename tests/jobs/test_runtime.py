import logging
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from nutricoach.jobs import services
from nutricoach.jobs.backoff import Backoff
from nutricoach.jobs.models import ErrorKind, Job, JobAttempt, JobState, QueueState
from nutricoach.jobs.runner import run_job, run_until_idle
from tests import jobtasks
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_enqueue_writes_waiting_job():
    result = services.enqueue("tests.noop", {"a": 1})

    job = Job.objects.get(pk=result.job.pk)
    assert result.created is True
    assert (job.queue, job.task, job.state, job.payload) == ("maintenance", "tests.noop", JobState.WAITING, {"a": 1})
    assert job.max_attempts == 3
    assert job.progress == 0


def test_enqueue_with_future_run_at_is_delayed():
    run_at = timezone.now() + timedelta(minutes=5)

    job = services.enqueue("tests.noop", run_at=run_at).job

    assert job.state == JobState.DELAYED
    assert job.run_at == run_at
    assert services.claim_next("maintenance") is None


def test_enqueue_same_idempotency_key_returns_existing(caplog):
    first = services.enqueue("tests.noop", {"n": 1}, idempotency_key="k-1")

    with caplog.at_level(logging.INFO, logger="nutricoach.jobs.services"):
        second = services.enqueue("tests.noop", {"n": 2}, idempotency_key="k-1")

    assert second.created is False
    assert second.job.pk == first.job.pk
    assert Job.objects.count() == 1
    assert f"job {first.job.pk} already exists for idempotency key k-1" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "no.such.task"}, "No job handler is registered as 'no.such.task'"),
        ({"task": "tests.noop", "queue": "nowhere"}, "Unknown queue 'nowhere'"),
        ({"task": "tests.noop", "payload": [1, 2]}, "must be a JSON object, got list"),
        ({"task": "tests.noop", "attempts": 0}, "attempts must be at least 1, got 0"),
    ],
)
def test_enqueue_rejects_bad_requests(kwargs, message):
    task = kwargs.pop("task")

    with pytest.raises(services.EnqueueError, match=message):
        services.enqueue(task, **kwargs)
    assert not Job.objects.exists()


def test_claim_takes_highest_priority_then_oldest():
    low = [services.enqueue("tests.noop", {"i": i}).job for i in range(3)]
    high = services.enqueue("tests.noop", {"i": 99}, priority=10).job

    order = [services.claim_next("maintenance").pk for _ in range(4)]

    assert order == [high.pk, low[0].pk, low[1].pk, low[2].pk]


def test_completed_job_stores_result_progress_and_attempt(caplog):
    job = services.enqueue("tests.noop").job

    with caplog.at_level(logging.INFO, logger="nutricoach.jobs.services"):
        assert run_until_idle("maintenance") == 1

    job.refresh_from_db()
    assert (job.state, job.progress, job.result, job.attempts_made) == (JobState.COMPLETED, 100, {"ok": True}, 1)
    assert job.finished_at is not None
    attempt = JobAttempt.objects.get(job=job)
    assert attempt.outcome == "completed"
    assert f"job completed id={job.pk} queue=maintenance task=tests.noop attempt=1 duration_ms=" in caplog.text


def test_retryable_error_schedules_backoff_then_dead_letters():
    job = services.enqueue("tests.flaky", {"fail_times": 10}, attempts=3, backoff=Backoff.exponential(2.0)).job
    delays = []

    for attempt in range(1, 4):
        claimed = services.claim_next("maintenance")
        before = timezone.now()
        run_job(claimed)
        job.refresh_from_db()
        if attempt < 3:
            assert job.state == JobState.DELAYED
            assert job.error_kind == ErrorKind.RETRYABLE
            delays.append((job.run_at - before).total_seconds())
            Job.objects.filter(pk=job.pk).update(state=JobState.WAITING, run_at=timezone.now())

    assert [round(delay) for delay in delays] == [2, 4]
    assert job.state == JobState.FAILED
    assert job.dead_lettered_at is not None
    assert job.attempts_made == 3
    assert job.payload == {"fail_times": 10}
    assert "transient failure on attempt 3" in job.error


def test_retry_after_replaces_backoff_delay():
    job = services.enqueue("tests.flaky", {"fail_times": 1, "retry_after": 17}).job

    before = timezone.now()
    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.DELAYED
    assert 16.5 <= (job.run_at - before).total_seconds() <= 17.5


def test_terminal_error_dead_letters_at_once():
    job = services.enqueue("tests.flaky", {"fail_times": 0, "terminal": True}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.attempts_made == 1
    assert job.error == "the input can never be processed"


def test_unexpected_exception_is_retried_then_dead_lettered():
    job = services.enqueue("tests.crash").job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.attempts_made == 2
    assert job.error_kind == ErrorKind.UNEXPECTED
    assert job.error == "ZeroDivisionError: division by zero in the handler"


def test_payload_not_matching_handler_is_terminal():
    job = services.enqueue("tests.flaky", {"wrong": 1}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert "payload does not match the handler of tests.flaky" in job.error


def test_dead_letter_hook_runs_once():
    jobtasks.dead_letters.clear()
    job = services.enqueue("tests.doomed").job

    run_until_idle("maintenance")

    assert jobtasks.dead_letters == [(str(job.pk), "doomed from the start")]


def test_backoff_policies():
    rng = random.Random(7)
    exponential = Backoff.exponential(2.0, cap=60)
    fixed = Backoff.fixed(5)
    jittered = Backoff.exponential_jitter(2.0, jitter=1.0, cap=30)

    assert [exponential.delay_after(n) for n in range(1, 7)] == [2, 4, 8, 16, 32, 60]
    assert [fixed.delay_after(n) for n in range(1, 4)] == [5, 5, 5]
    for attempt in range(1, 10):
        base = min(2.0 * 2 ** (attempt - 1), 30)
        for _ in range(200):
            delay = jittered.delay_after(attempt, rng=rng)
            assert base <= delay <= min(base + 1.0, 30)


def test_backoff_rejects_unknown_kind():
    with pytest.raises(ValueError, match="Unknown backoff kind 'linear'"):
        Backoff("linear", 1.0)


def test_rate_limit_holds_jobs_without_spending_attempts(settings, tmp_path):
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, "meal-processing": {
        **settings.JOB_QUEUES["meal-processing"], "rate_limit": 2, "rate_window": 60}}
    jobs = [services.enqueue("tests.limited", {"directory": str(tmp_path)}, rate_limited=True).job for _ in range(3)]
    free = services.enqueue("tests.limited", {"directory": str(tmp_path)}).job

    ran = run_until_idle("meal-processing")

    assert ran == 3
    states = {job.pk: Job.objects.get(pk=job.pk) for job in [*jobs, free]}
    assert states[free.pk].state == JobState.COMPLETED
    held = [job for job in states.values() if job.state == JobState.WAITING]
    assert len(held) == 1
    assert held[0].attempts_made == 0


def test_rate_limit_window_frees_slots(settings, tmp_path):
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, "meal-processing": {
        **settings.JOB_QUEUES["meal-processing"], "rate_limit": 1, "rate_window": 60}}
    first, second = (services.enqueue("tests.limited", {"directory": str(tmp_path)}, rate_limited=True).job
                     for _ in range(2))
    run_until_idle("meal-processing")
    JobAttempt.objects.update(started_at=timezone.now() - timedelta(seconds=61))

    run_until_idle("meal-processing")

    assert Job.objects.get(pk=second.pk).state == JobState.COMPLETED


def test_paused_queue_gives_no_jobs():
    job = services.enqueue("tests.noop").job
    services.set_paused("maintenance", True)

    assert run_until_idle("maintenance") == 0
    assert Job.objects.get(pk=job.pk).state == JobState.WAITING

    services.set_paused("maintenance", False)
    assert run_until_idle("maintenance") == 1
    assert QueueState.objects.get(name="maintenance").paused is False


def test_expired_lease_is_recovered_as_stalled(caplog):
    job = services.enqueue("tests.noop").job
    claimed = services.claim_next("maintenance")
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    with caplog.at_level(logging.WARNING, logger="nutricoach.jobs.services"):
        assert services.recover_stalled() == 1

    job.refresh_from_db()
    assert job.state == JobState.WAITING
    assert job.error_kind == ErrorKind.STALLED
    assert f"job stalled id={job.pk} queue=maintenance task=tests.noop attempt=1" in caplog.text
    # The stalled worker's late result is ignored: the attempt no longer owns the job.
    assert services.complete(claimed, {"late": True}, duration_ms=1) is False
    run_until_idle("maintenance")
    job.refresh_from_db()
    assert (job.state, job.attempts_made, job.result) == (JobState.COMPLETED, 2, {"ok": True})


def test_stalled_last_attempt_dead_letters_and_runs_hook():
    jobtasks.dead_letters.clear()
    job = services.enqueue("tests.doomed").job
    services.claim_next("maintenance")
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    services.recover_stalled()

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.dead_lettered_at is not None
    assert len(jobtasks.dead_letters) == 1
    assert "lease expired" in jobtasks.dead_letters[0][1]


def test_promote_due_delayed_jobs():
    job = services.enqueue("tests.noop", run_at=timezone.now() + timedelta(seconds=30)).job
    assert services.promote_due_delayed() == 0

    Job.objects.filter(pk=job.pk).update(run_at=timezone.now() - timedelta(seconds=1))

    assert services.promote_due_delayed() == 1
    assert Job.objects.get(pk=job.pk).state == JobState.WAITING


def test_replay_adds_attempt_keeps_history():
    job = services.enqueue("tests.flaky", {"fail_times": 1}, attempts=1).job
    run_until_idle("maintenance")
    job.refresh_from_db()
    assert job.is_dead_letter

    assert services.replay(job) is True
    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 2
    assert list(job.attempts.values_list("number", "outcome")) == [(1, "retryable"), (2, "completed")]


def test_cancel_waiting_job_and_discard_dead_letter():
    waiting = services.enqueue("tests.noop").job
    dead = services.enqueue("tests.doomed").job
    run_until_idle("maintenance")
    # The no-op ran too; enqueue another one to cancel.
    waiting = services.enqueue("tests.noop").job

    assert services.cancel(waiting) is True
    assert services.cancel(Job.objects.get(pk=dead.pk)) is True
    assert Job.objects.get(pk=waiting.pk).state == JobState.CANCELLED
    assert Job.objects.get(pk=dead.pk).state == JobState.CANCELLED
    assert run_until_idle("maintenance") == 0


def test_resend_lost_wakeups_only_for_stale_waiting_jobs():
    services.enqueue("tests.noop")
    assert services.resend_lost_wakeups(older_than_seconds=3, force=True) == []

    stale = services.enqueue("tests.noop").job
    Job.objects.filter(pk=stale.pk).update(wakeup_sent_at=timezone.now() - timedelta(seconds=10))

    assert services.resend_lost_wakeups(older_than_seconds=3, force=True) == ["maintenance"]
    # Within the interval the same queue is not woken again.
    assert services.resend_lost_wakeups(older_than_seconds=3) == []


def test_job_status_api_for_owner_only(client):
    from tests.factories import ApiTokenFactory

    owner_token = ApiTokenFactory()
    other_token = ApiTokenFactory()
    job = services.enqueue("tests.noop", owner=owner_token.user).job
    run_until_idle("maintenance")

    response = client.get(f"/api/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {owner_token.raw}")
    other = client.get(f"/api/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {other_token.raw}")
    missing = client.get(f"/api/jobs/{UserFactory().pk:08d}-0000-0000-0000-000000000000",
                         HTTP_AUTHORIZATION=f"Bearer {owner_token.raw}")
    malformed = client.get("/api/jobs/not-a-uuid", HTTP_AUTHORIZATION=f"Bearer {owner_token.raw}")
    anonymous = client.get(f"/api/jobs/{job.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["progress"], body["attempts_made"], body["result"]) == ("completed", 100, 1, {"ok": True})
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    assert missing.status_code == 404
    assert malformed.status_code == 422
    assert anonymous.status_code == 401


def test_job_status_api_shows_error_summary_not_traceback(client):
    from tests.factories import ApiTokenFactory

    token = ApiTokenFactory()
    job = services.enqueue("tests.doomed", owner=token.user).job
    run_until_idle("maintenance")

    body = client.get(f"/api/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {token.raw}").json()

    assert body["state"] == "failed"
    assert body["dead_lettered"] is True
    assert body["error"] == "doomed from the start"
    assert body["error_kind"] == "terminal"


def test_result_that_is_not_json_is_terminal():
    job = services.enqueue("tests.bad_result").job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.attempts_made == 1
    assert "returned a result that is not JSON" in job.error


def test_upstream_rate_limit_does_not_spend_attempts():
    job = services.enqueue("tests.throttled", {"limited_times": 3}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.result == {"attempt": 4}
    assert job.max_attempts == 5
    assert list(job.attempts.values_list("outcome", flat=True)) == ["rate_limited"] * 3 + ["completed"]


def test_upstream_rate_limit_that_never_lifts_dead_letters():
    job = services.enqueue("tests.throttled", {"limited_times": 1000}).job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.dead_lettered_at is not None
    assert job.attempts.filter(outcome="rate_limited").count() == services.MAX_RATE_LIMIT_WAITS
    assert job.attempts_made == services.MAX_RATE_LIMIT_WAITS + 2


def test_enqueue_many_skips_existing_keys():
    services.enqueue("tests.noop", {"n": 0}, idempotency_key="bulk-0")
    requests = [services.JobRequest({"n": n}, idempotency_key=f"bulk-{n}") for n in range(3)]

    created = services.enqueue_many("tests.noop", requests)

    assert created == 2
    assert sorted(Job.objects.values_list("idempotency_key", flat=True)) == ["bulk-0", "bulk-1", "bulk-2"]
    assert run_until_idle("maintenance") == 3


def test_enqueue_many_rejects_bad_payload_writing_nothing():
    requests = [services.JobRequest({"n": 1}), services.JobRequest(["not", "a", "dict"])]

    with pytest.raises(services.EnqueueError, match="must be a JSON object, got list"):
        services.enqueue_many("tests.noop", requests)
    assert not Job.objects.exists()


def test_queue_metrics_api_is_for_staff(client):
    from tests.factories import ApiTokenFactory

    staff_token = ApiTokenFactory(user=UserFactory(is_staff=True))
    user_token = ApiTokenFactory()
    services.enqueue("tests.noop")
    services.enqueue("tests.noop", run_at=timezone.now() + timedelta(minutes=5))

    response = client.get("/api/queues", HTTP_AUTHORIZATION=f"Bearer {staff_token.raw}")
    denied = client.get("/api/queues", HTTP_AUTHORIZATION=f"Bearer {user_token.raw}")

    assert response.status_code == 200
    maintenance = next(row for row in response.json() if row["name"] == "maintenance")
    assert (maintenance["waiting"], maintenance["delayed"], maintenance["total"]) == (1, 1, 2)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"


def test_dispatcher_logs_queue_metrics(caplog):
    from nutricoach.jobs import dispatcher

    services.enqueue("tests.noop")

    with caplog.at_level(logging.INFO, logger="nutricoach.jobs.dispatcher"):
        dispatcher.log_queue_metrics()

    assert "queue maintenance: 1 waiting, 0 active, 0 delayed, 0 dead letters, oldest waiting 0 s" in caplog.text


def test_stall_recovery_spares_extended_lease():
    job = services.enqueue("tests.noop").job
    claimed = services.claim_next("maintenance")
    services.extend_lease(claimed, 60)

    state = services.fail(claimed, error="lease expired", kind=ErrorKind.STALLED, expired_before=timezone.now())

    assert state is None
    assert Job.objects.get(pk=job.pk).state == JobState.ACTIVE


def test_result_with_nan_is_terminal():
    job = services.enqueue("tests.nan_result").job

    run_until_idle("maintenance")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "returned a result that is not JSON" in job.error


@pytest.mark.parametrize(("retry_after", "expected"), [(float("inf"), 2.0), (float("nan"), 2.0), (1e12, 3600.0)])
def test_retry_after_is_bounded(retry_after, expected):
    job = services.enqueue("tests.flaky", {"fail_times": 1}, backoff=Backoff.fixed(2.0)).job
    claimed = services.claim_next("maintenance")
    before = timezone.now()

    services.fail(claimed, error="upstream busy", kind=ErrorKind.RETRYABLE, retry_after=retry_after, now=before)

    job.refresh_from_db()
    assert job.state == JobState.DELAYED
    assert (job.run_at - before).total_seconds() == expected


def test_enqueue_many_counts_repeated_key_once():
    requests = [services.JobRequest({"n": 1}, idempotency_key="dup"), services.JobRequest({"n": 2}, idempotency_key="dup")]

    assert services.enqueue_many("tests.noop", requests) == 1
    assert Job.objects.count() == 1


def test_missed_dead_letter_hook_runs_from_dispatcher():
    jobtasks.dead_letters.clear()
    job = services.enqueue("tests.doomed").job
    run_until_idle("maintenance")
    jobtasks.dead_letters.clear()
    # As if the worker died between dead-lettering the job and running its hook.
    Job.objects.filter(pk=job.pk).update(
        dead_letter_hook_ran_at=None, dead_lettered_at=timezone.now() - timedelta(minutes=5)
    )

    assert services.run_missed_dead_letter_hooks() == 1
    assert services.run_missed_dead_letter_hooks() == 0

    assert jobtasks.dead_letters == [(str(job.pk), "doomed from the start")]
    assert Job.objects.get(pk=job.pk).dead_letter_hook_ran_at is not None
