"""The meal parse job through the job runtime with the OpenAI parser and a fake server."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from meals import services
from meals.models import Meal, ParseStatus
from meals.parsing.openai import BASE_MAX_COMPLETION_TOKENS
from nutricoach.jobs.models import ErrorKind, Job, JobLog, JobState
from nutricoach.jobs.runner import run_until_idle
from nutricoach.nutrients import NUTRIENTS
from tests.fakes.openai_server import EGGS, RICE, error_body

pytestmark = pytest.mark.django_db

QUEUE = "meal-processing"
MODEL = "gpt-test-mini"

@pytest.fixture
def openai_settings(settings, openai_server):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = openai_server.base_url
    settings.OPENAI_MODEL = MODEL
    settings.OPENAI_TIMEOUT = 5.0
    return settings


@pytest.fixture
def meal_and_job(user, openai_settings):
    return services.meal_create_for_parsing(owner=user, description="a cup of rice and 2 eggs")


def reload(meal, job):
    meal.refresh_from_db()
    job.refresh_from_db()
    return meal, job


def make_due(job):
    """Make a delayed retry due now, as the dispatcher does when its time comes."""
    Job.objects.filter(pk=job.pk).update(state=JobState.WAITING, run_at=timezone.now())


def assert_failed_meal(meal, job, reason_start, api_client):
    assert job.state == JobState.FAILED
    assert job.dead_lettered_at is not None
    assert meal.parse_status == ParseStatus.FAILED
    assert meal.parser == "openai"
    assert meal.parse_error.startswith(reason_start)
    assert meal.items.count() == 0
    assert all(getattr(meal, nutrient) == Decimal("0.00") for nutrient in NUTRIENTS)
    body = api_client.get(f"/api/meals/{meal.id}").json()
    assert body["parse_status"] == "failed"
    assert body["parse_error"] == meal.parse_error
    assert body["items"] == []


def test_openai_parse_stores_items(meal_and_job, openai_server, api_client):
    meal, job = meal_and_job
    openai_server.queue_completion({"items": [RICE, EGGS]})

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.COMPLETED
    assert job.result["parser"] == "openai"
    assert meal.parse_status == ParseStatus.PARSED
    assert meal.parser == "openai"
    assert [item.name for item in meal.items.all()] == ["white rice, cooked", "egg"]
    assert meal.calories == Decimal("348.00")
    assert meal.carbs == Decimal("45.20")
    assert meal.items.first().source == MODEL
    assert len(openai_server.requests) == 1
    assert openai_server.requests[0].body["max_completion_tokens"] == BASE_MAX_COMPLETION_TOKENS
    assert "a cup of rice and 2 eggs" in openai_server.requests[0].message_content("user")
    lines = list(JobLog.objects.filter(job_id=job.id).values_list("message", flat=True))
    assert lines[0].endswith("parsing with the openai parser")
    assert lines[1].startswith("openai parser returned 2 items in ")
    body = api_client.get(f"/api/meals/{meal.id}").json()
    assert body["parse_status"] == "parsed"
    assert body["parser"] == "openai"
    assert len(body["items"]) == 2


def test_parse_jobs_rate_limited_with_openai_key(meal_and_job):
    _, job = meal_and_job

    assert services.parse_is_rate_limited() is True
    assert job.rate_limited is True


def test_rate_limit_delays_job_by_retry_after(meal_and_job, openai_server):
    meal, job = meal_and_job
    openai_server.queue_error(429, error_body("Rate limit reached", type="requests", code="rate_limit_exceeded"),
                              headers={"retry-after": "17"})
    before = timezone.now()

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.DELAYED
    assert job.error_kind == ErrorKind.RETRYABLE
    assert "rate limit reached (HTTP 429)" in job.error
    assert before + timedelta(seconds=17) <= job.run_at <= timezone.now() + timedelta(seconds=17)
    assert meal.parse_status == ParseStatus.PENDING
    assert meal.items.count() == 0


def test_rate_limited_job_completes_after_wait(meal_and_job, openai_server):
    meal, job = meal_and_job
    openai_server.queue_error(429, headers={"retry-after": "1"})
    openai_server.queue_completion({"items": [RICE]})
    run_until_idle(QUEUE)

    make_due(job)
    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 2
    assert meal.items.count() == 1


@pytest.mark.parametrize(
    ("status", "body", "reason_start"),
    [
        (
            429,
            error_body("You exceeded your current quota.", type="insufficient_quota", code="insufficient_quota"),
            "OpenAI quota exhausted (HTTP 429 insufficient_quota)",
        ),
        (401, error_body("Incorrect API key provided.", code="invalid_api_key"), "OpenAI rejected the request (HTTP 401)"),
    ],
    ids=["quota", "unauthorized"],
)
def test_upstream_rejection_dead_letters_and_fails_meal(meal_and_job, openai_server, api_client, status, body,
                                                        reason_start):
    meal, job = meal_and_job
    openai_server.queue_error(status, body)

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.attempts_made == 1
    assert_failed_meal(meal, job, reason_start, api_client)
    assert len(openai_server.requests) == 1


def test_server_error_retried_then_stored(meal_and_job, openai_server):
    meal, job = meal_and_job
    openai_server.queue_error(500)
    openai_server.queue_completion({"items": [EGGS]})

    run_until_idle(QUEUE)
    meal, job = reload(meal, job)
    assert job.state == JobState.DELAYED
    assert job.error_kind == ErrorKind.RETRYABLE
    assert "OpenAI server error (HTTP 500)" in job.error
    assert meal.parse_status == ParseStatus.PENDING

    make_due(job)
    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 2
    assert meal.items.count() == 1
    assert meal.parse_status == ParseStatus.PARSED


def test_server_errors_on_every_attempt_fail_meal(meal_and_job, openai_server, api_client):
    meal, job = meal_and_job
    for _ in range(3):
        openai_server.queue_error(503)

    for _ in range(3):
        make_due(job)
        run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.attempts_made == 3
    assert job.error_kind == ErrorKind.RETRYABLE
    assert_failed_meal(meal, job, "OpenAI server error (HTTP 503)", api_client)


def test_timeout_retried(meal_and_job, openai_server, openai_settings):
    meal, job = meal_and_job
    openai_settings.OPENAI_TIMEOUT = 0.3
    openai_server.queue_delay(3.0, {"items": [EGGS]})

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.DELAYED
    assert job.error_kind == ErrorKind.RETRYABLE
    assert "OpenAI request timed out" in job.error
    assert meal.parse_status == ParseStatus.PENDING
    assert meal.items.count() == 0


def test_truncated_output_retried_with_larger_budget(meal_and_job, openai_server):
    meal, job = meal_and_job
    openai_server.queue_completion('{"items": [{"name": "white rice', finish_reason="length")
    openai_server.queue_completion({"items": [RICE, EGGS]})

    run_until_idle(QUEUE)
    meal, job = reload(meal, job)
    assert job.state == JobState.DELAYED
    assert "cut off at max_completion_tokens=1024" in job.error

    make_due(job)
    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.COMPLETED
    assert [request.body["max_completion_tokens"] for request in openai_server.requests] == [1024, 2048]
    assert meal.items.count() == 2


def test_refusal_is_terminal(meal_and_job, openai_server, api_client):
    meal, job = meal_and_job
    openai_server.queue_completion(None, refusal="I can't help with that request.")

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.attempts_made == 1
    assert_failed_meal(meal, job, "model refused to analyse the description: I can't help", api_client)


def test_malformed_json_fails_meal(meal_and_job, openai_server, api_client):
    meal, job = meal_and_job
    openai_server.queue_completion('{"items": [{"name": "rice", "quantity": 1,,}')

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.error_kind == ErrorKind.TERMINAL
    assert_failed_meal(meal, job, "model response contains no JSON object", api_client)


@pytest.mark.parametrize(
    ("item", "reason_start"),
    [
        ({**RICE, "calories": 90_000}, "item 1 ('white rice, cooked'): calories is 90000.00, above the maximum"),
        ({**RICE, "carbs": -5}, "item 1 ('white rice, cooked'): carbs is -5.00, but must be zero or more"),
        ({**RICE, "grams": "lots"}, "item 1 ('white rice, cooked'): grams must be a number"),
        ({**RICE, "fat": 400}, "item 1 ('white rice, cooked'): fat is 400.00 g, more than the item's 158.00 g"),
    ],
    ids=["huge-energy", "negative", "string", "fat-over-weight"],
)
def test_impossible_numbers_fail_meal(meal_and_job, openai_server, api_client, item, reason_start):
    meal, job = meal_and_job
    openai_server.queue_completion({"items": [item, EGGS]})

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.error_kind == ErrorKind.TERMINAL
    assert_failed_meal(meal, job, reason_start, api_client)


def test_implausible_numbers_need_review(meal_and_job, openai_server, api_client):
    meal, job = meal_and_job
    huge_steak = {"name": "steak", "quantity": 1, "unit": "count", "grams": 1200, "calories": 3000,
                  "protein": 300, "carbs": 0, "fat": 200, "fiber": 0}
    openai_server.queue_completion({"items": [huge_steak, EGGS]})

    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert job.state == JobState.COMPLETED
    assert meal.parse_status == ParseStatus.NEEDS_REVIEW
    assert "item 1 ('steak'): 3000.00 kcal is unusually high for one item" in meal.parse_error
    assert meal.items.count() == 2
    assert meal.calories == Decimal("3143.00")
    body = api_client.get(f"/api/meals/{meal.id}").json()
    assert body["parse_status"] == "needs_review"
    assert body["parse_error"] == meal.parse_error


def test_failed_reparse_removes_earlier_items(meal_and_job, openai_server, api_client):
    meal, job = meal_and_job
    openai_server.queue_completion({"items": [RICE, EGGS]})
    run_until_idle(QUEUE)
    assert Meal.objects.get(pk=meal.pk).items.count() == 2

    job = services.meal_reparse(meal=meal)
    openai_server.queue_completion(None, refusal="No.")
    run_until_idle(QUEUE)

    meal, job = reload(meal, job)
    assert_failed_meal(meal, job, "model refused", api_client)
