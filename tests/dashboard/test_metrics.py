import math
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from nutricoach.jobs.models import DispatcherHeartbeat, JobAttempt, JobState, QueueState
from tests.dashboard.conftest import logged_in_client
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client=None, **headers):
    return (client or Client()).get("/metrics", **headers)


def samples(response):
    """Return {(metric name, frozenset of labels): value} of a scrape."""
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def value(values, name, **labels):
    return values[(name, frozenset(labels.items()))]


def test_anonymous_gets_401():
    response = scrape()

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"Authentication required" in response.content


def test_wrong_token_gets_401():
    response = scrape(HTTP_AUTHORIZATION="Bearer wrong-token")

    assert response.status_code == 401
    assert b"Invalid metrics token" in response.content


def test_token_rejected_when_unset(settings):
    settings.METRICS_TOKEN = ""

    response = scrape(HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 401


def test_non_staff_session_gets_403(plain_user):
    response = scrape(logged_in_client(plain_user))

    assert response.status_code == 403


def test_staff_session_gets_metrics(staff_viewer):
    response = scrape(logged_in_client(staff_viewer))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_post_is_not_allowed():
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 405


def test_metrics_report_queue_state():
    now = timezone.now()
    JobFactory.create_batch(3, queue="notifications", state=JobState.WAITING, run_at=now - timedelta(seconds=120))
    JobFactory(queue="notifications", state=JobState.ACTIVE)
    JobFactory(queue="maintenance", state=JobState.FAILED, error_kind="terminal", finished_at=now, dead_lettered_at=now)
    JobFactory(queue="maintenance", state=JobState.FAILED, error_kind="stalled", finished_at=now, dead_lettered_at=now)
    QueueState.objects.create(name="maintenance", paused=True)

    response = scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    values = samples(response)
    assert value(values, "nutricoach_queue_jobs", queue="notifications", state="waiting") == 3
    assert value(values, "nutricoach_queue_jobs", queue="notifications", state="active") == 1
    assert value(values, "nutricoach_queue_jobs", queue="maintenance", state="failed") == 2
    assert value(values, "nutricoach_queue_jobs", queue="meal-processing", state="waiting") == 0
    assert value(values, "nutricoach_queue_dead_letters", queue="maintenance") == 2
    assert value(values, "nutricoach_queue_paused", queue="maintenance") == 1
    assert value(values, "nutricoach_queue_paused", queue="notifications") == 0
    assert 120 <= value(values, "nutricoach_queue_oldest_waiting_age_seconds", queue="notifications") < 150
    assert value(values, "nutricoach_queue_oldest_waiting_age_seconds", queue="maintenance") == 0
    assert value(values, "nutricoach_queue_failed_jobs", queue="maintenance", error_kind="terminal") == 1
    assert value(values, "nutricoach_queue_failed_jobs", queue="maintenance", error_kind="stalled") == 1


def test_metrics_report_recent_failed_attempts():
    job = JobFactory(queue="meal-processing")
    now = timezone.now()
    for number, outcome in enumerate(["retryable", "retryable", "unexpected", "completed"], start=1):
        JobAttempt.objects.create(job=job, queue="meal-processing", number=number, started_at=now,
                                  finished_at=now, outcome=outcome)
    JobAttempt.objects.create(job=job, queue="meal-processing", number=5, started_at=now - timedelta(hours=2),
                              finished_at=now - timedelta(hours=2), outcome="terminal")

    values = samples(scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))

    assert value(values, "nutricoach_queue_failed_attempts_recent", queue="meal-processing", error_kind="retryable") == 2
    assert value(values, "nutricoach_queue_failed_attempts_recent", queue="meal-processing", error_kind="unexpected") == 1
    assert ("nutricoach_queue_failed_attempts_recent",
            frozenset({"queue": "meal-processing", "error_kind": "terminal"}.items())) not in values


def test_metrics_report_dispatcher_heartbeats():
    now = timezone.now()
    DispatcherHeartbeat.objects.create(name="a:1", beat_at=now - timedelta(seconds=30))
    DispatcherHeartbeat.objects.create(name="b:2", beat_at=now - timedelta(seconds=2))

    values = samples(scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))

    assert 30 <= value(values, "nutricoach_dispatcher_heartbeat_age_seconds", dispatcher="a:1") < 40
    assert 2 <= value(values, "nutricoach_dispatcher_newest_heartbeat_age_seconds") < 10


def test_metrics_without_dispatcher_report_infinite_age():
    response = scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert "nutricoach_dispatcher_newest_heartbeat_age_seconds +Inf" in response.content.decode()
    assert math.isinf(value(samples(response), "nutricoach_dispatcher_newest_heartbeat_age_seconds"))


def test_metrics_text_has_help_and_type():
    body = scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert "# HELP nutricoach_queue_jobs Jobs in the table by queue and state." in body
    assert "# TYPE nutricoach_queue_jobs gauge" in body
    assert 'nutricoach_queue_jobs{queue="maintenance",state="waiting"} 0.0' in body
