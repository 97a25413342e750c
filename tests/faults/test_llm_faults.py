"""Meal parse jobs against an OpenAI-compatible server that fails a share of requests.

Each meal's description carries its number, so the fake server can script every meal's
requests: the first response is a fault chosen round-robin (or at random with a fixed
seed), and later responses are a valid completion. Jobs run in-process; delayed retries are
made due at once instead of waiting out the backoff.
"""

import json
import random
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from meals.models import FoodItem, ParseStatus
from meals.services import meal_create_for_parsing
from nutricoach.jobs.models import ErrorKind, Job, JobAttempt, JobState
from nutricoach.jobs.runner import run_until_idle
from nutricoach.nutrients import NUTRIENTS
from tests.fakes.openai_server import FakeOpenAIServer, ScriptedResponse, error_body

pytestmark = pytest.mark.django_db

QUEUE = "meal-processing"
RICE = {"name": "white rice, cooked", "quantity": 1, "unit": "cup", "grams": 158, "calories": 205,
        "protein": 4.25, "carbs": 44.5, "fat": 0.44, "fiber": 0.6}
STEAK = {"name": "steak", "quantity": 1, "unit": "count", "grams": 1200, "calories": 3000,
         "protein": 300, "carbs": 0, "fat": 200, "fiber": 0}
CLIENT_TIMEOUT = 0.5
MEAL_NUMBER = re.compile(r"meal (\d+):")


def completion(content, *, finish_reason="stop", refusal=None, delay=0.0):
    return ScriptedResponse(200, {"_completion": True, "content": content, "finish_reason": finish_reason,
                                  "refusal": refusal, "model": None, "usage": None}, delay=delay)


VALID = completion(json.dumps({"items": [RICE]}))
FAULTS = {
    "rate_limit": ScriptedResponse(429, error_body("Rate limit reached", type="requests", code="rate_limit_exceeded"),
                                   headers={"retry-after": "7"}),
    "server_error": ScriptedResponse(500, error_body("The server had an error", type="server_error")),
    "timeout": completion(json.dumps({"items": [RICE]}), delay=CLIENT_TIMEOUT + 1.5),
    "truncated": completion('{"items": [{"name": "white rice', finish_reason="length"),
    "refusal": completion(None, refusal="I can't help with that request."),
    "malformed": completion('{"items": [{"name": "rice", "quantity": 1,,}'),
    "impossible": completion(json.dumps({"items": [{**RICE, "name": "rice", "calories": 90_000}]})),
    "implausible": completion(json.dumps({"items": [STEAK]})),
}
RETRYABLE = {"rate_limit", "server_error", "timeout", "truncated"}
# The first words of the reason each terminal fault leaves on the meal.
TERMINAL_REASONS = {
    "refusal": "model refused to analyse the description: I can't help",
    "malformed": "model response contains no JSON object",
    "impossible": "item 1 ('rice'): calories is 90000.00, above the maximum",
}


class ScriptedFaultServer(FakeOpenAIServer):
    """Respond to each meal's requests from its own script, repeating the last entry.

    Requests arrive one at a time (jobs run in-process), so the request just recorded is
    the one being answered.
    """

    def __init__(self):
        super().__init__()
        self.scripts = {}
        self.served = {}

    def _next_response(self):
        number = int(MEAL_NUMBER.search(self.requests[-1].message_content("user")).group(1))
        served = self.served.setdefault(number, [])
        script = self.scripts[number]
        name = script[min(len(served), len(script) - 1)]
        served.append(name)
        return VALID if name == "valid" else FAULTS[name]


@pytest.fixture
def fault_server(settings):
    server = ScriptedFaultServer().start()
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_MODEL = "gpt-test-mini"
    settings.OPENAI_TIMEOUT = CLIENT_TIMEOUT
    # Jobs run back to back here; the queue's LLM rate limit is not under test.
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, QUEUE: {**settings.JOB_QUEUES[QUEUE], "rate_limit": 100_000}}
    try:
        yield server
    finally:
        server.stop()


def create_meals(user, server, scripts):
    meals = []
    for number, script in enumerate(scripts):
        server.scripts[number] = script
        meal, _ = meal_create_for_parsing(owner=user, description=f"meal {number}: a cup of rice")
        meals.append(meal)
    return meals


def run_all_retries():
    """Run jobs until none is waiting or delayed, making every delayed retry due at once."""
    for _ in range(50):
        run_until_idle(QUEUE)
        due = Job.objects.filter(queue=QUEUE, state=JobState.DELAYED).update(
            state=JobState.WAITING, run_at=timezone.now()
        )
        if not due and not Job.objects.filter(queue=QUEUE, state=JobState.WAITING).exists():
            return
    raise AssertionError("jobs were still retrying after 50 rounds")


def assert_failed_with_reason(meal, reason):
    job = Job.objects.get(pk=meal.parse_job_id)
    assert meal.parse_status == ParseStatus.FAILED, meal.description
    assert meal.parse_error.startswith(reason), (meal.description, meal.parse_error)
    assert job.state == JobState.FAILED, meal.description
    assert job.dead_lettered_at is not None, meal.description
    assert not FoodItem.objects.filter(meal=meal).exists(), meal.description
    assert all(getattr(meal, nutrient) == Decimal("0.00") for nutrient in NUTRIENTS), meal.description


def assert_parsed_once(meal):
    job = Job.objects.get(pk=meal.parse_job_id)
    assert meal.parse_status == ParseStatus.PARSED, (meal.description, meal.parse_error)
    assert job.state == JobState.COMPLETED, meal.description
    assert list(FoodItem.objects.filter(meal=meal).values_list("position", "name")) == [(0, "white rice, cooked")]
    assert meal.calories == Decimal("205.00"), meal.description
    assert job.attempts.filter(outcome="completed").count() == 1, meal.description


def test_each_llm_fault_ends_as_designed(user, fault_server):
    faults = list(FAULTS)
    scripts = [[faults[number % len(faults)], "valid"] for number in range(3 * len(faults))]
    meals = create_meals(user, fault_server, scripts)

    run_all_retries()

    for number, meal in enumerate(meals):
        meal.refresh_from_db()
        fault = scripts[number][0]
        job = Job.objects.get(pk=meal.parse_job_id)
        outcomes = list(job.attempts.values_list("outcome", flat=True))
        if fault in RETRYABLE:
            assert_parsed_once(meal)
            assert fault_server.served[number] == [fault, "valid"]
            assert outcomes == ["rate_limited" if fault == "rate_limit" else "retryable", "completed"], fault
        elif fault == "implausible":
            assert meal.parse_status == ParseStatus.NEEDS_REVIEW
            assert "item 1 ('steak'): 3000.00 kcal is unusually high for one item" in meal.parse_error
            assert FoodItem.objects.filter(meal=meal).count() == 1
            assert meal.calories == Decimal("3000.00")
            assert outcomes == ["completed"]
        else:
            assert_failed_with_reason(meal, TERMINAL_REASONS[fault])
            assert fault_server.served[number] == [fault]
            assert job.error_kind == ErrorKind.TERMINAL
            assert outcomes == ["terminal"]
    truncated = [request.body["max_completion_tokens"] for request in fault_server.requests
                 if MEAL_NUMBER.search(request.message_content("user")).group(1) == str(faults.index("truncated"))]
    assert truncated == [1024, 2048]


def test_rate_limit_waits_do_not_spend_attempts(user, fault_server):
    (meal,) = create_meals(user, fault_server, [["rate_limit"] * 4 + ["valid"]])

    run_all_retries()

    meal.refresh_from_db()
    assert_parsed_once(meal)
    job = Job.objects.get(pk=meal.parse_job_id)
    assert list(job.attempts.values_list("outcome", flat=True)) == ["rate_limited"] * 4 + ["completed"]


def test_retryable_fault_on_every_attempt_fails_meal(user, fault_server):
    meals = create_meals(user, fault_server, [["server_error"], ["timeout"], ["truncated"]])

    run_all_retries()

    for meal, reason in zip(meals, ["OpenAI server error (HTTP 500)", "OpenAI request timed out",
                                    "model output was cut off"]):
        meal.refresh_from_db()
        assert_failed_with_reason(meal, reason)
        job = Job.objects.get(pk=meal.parse_job_id)
        assert job.attempts_made == 3
        assert job.error_kind == ErrorKind.RETRYABLE


def test_seeded_random_faults_lose_no_meal(user, fault_server):
    generator = random.Random(20261204)
    faults = list(FAULTS)
    # A third of the first responses, and a fifth of the retries, are a random fault.
    scripts = []
    for _ in range(60):
        first = generator.choice(faults) if generator.random() < 1 / 3 else "valid"
        retries = [generator.choice(sorted(RETRYABLE)) if generator.random() < 0.2 else "valid" for _ in range(3)]
        scripts.append([first, *retries, "valid"])
    meals = create_meals(user, fault_server, scripts)

    run_all_retries()

    counts = {"parsed": 0, "failed": 0, "needs_review": 0}
    for number, meal in enumerate(meals):
        meal.refresh_from_db()
        served = fault_server.served[number]
        counts[meal.parse_status] += 1
        if served[-1] == "valid":
            assert_parsed_once(meal)
        elif served[-1] == "implausible":
            assert meal.parse_status == ParseStatus.NEEDS_REVIEW
            assert meal.parse_error
        else:
            assert meal.parse_status == ParseStatus.FAILED, (served, meal.parse_status)
            assert meal.parse_error
            assert not FoodItem.objects.filter(meal=meal).exists()
            job = Job.objects.get(pk=meal.parse_job_id)
            if served[-1] in RETRYABLE:
                # Rate-limit waits are free, so a retryable fault fails the meal after 3 attempts.
                assert job.attempts_made - served.count("rate_limit") == 3, served
    assert sum(counts.values()) == 60
    # The seed gives every outcome at least once.
    assert counts["parsed"] > 0
    assert counts["failed"] > 0
    assert counts["needs_review"] > 0
    assert Job.objects.filter(queue=QUEUE).exclude(state__in=[JobState.COMPLETED, JobState.FAILED]).count() == 0
    assert JobAttempt.objects.filter(job__queue=QUEUE, finished_at__isnull=True).count() == 0
