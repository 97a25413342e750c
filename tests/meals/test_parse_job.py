"""The meal parse job through the job runtime, in-process, with the local USDA parser."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from meals import services, tasks
from meals.api import DESCRIPTION_MAX_LENGTH
from meals.models import FoodItem, Meal, ParseStatus
from meals.parsing import get_parser
from meals.parsing.validation import MAX_DESCRIPTION_LENGTH
from nutricoach.jobs import services as jobs
from nutricoach.jobs.models import ErrorKind, Job, JobLog, JobState
from nutricoach.jobs.runner import run_until_idle
from nutricoach.nutrients import NUTRIENTS
from tests.factories import FoodItemFactory

pytestmark = pytest.mark.django_db

QUEUE = "meal-processing"


@pytest.fixture(autouse=True)
def local_parser(settings):
    settings.OPENAI_API_KEY = ""
    settings.JOB_RATE_LIMIT_LOCAL_PARSER = False


def create_meal(user, description="2 eggs and a slice of toast"):
    return services.meal_create_for_parsing(owner=user, description=description)


def log_lines(job):
    return list(JobLog.objects.filter(job_id=job.id).values_list("message", flat=True))


def assert_totals_are_item_sums(meal):
    items = list(meal.items.all())
    for nutrient in NUTRIENTS:
        assert getattr(meal, nutrient) == sum((getattr(item, nutrient) for item in items), Decimal("0.00")), nutrient


def make_due(job):
    """Make a delayed retry due now, as the dispatcher does when its time comes."""
    Job.objects.filter(pk=job.pk).update(state=JobState.WAITING, run_at=timezone.now())


def test_parse_job_stores_items_and_totals(user):
    meal, job = create_meal(user)

    ran = run_until_idle(QUEUE)

    assert ran == 1
    job.refresh_from_db()
    meal.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.progress == 100
    assert job.result["stored"] is True
    assert job.result["items"] == 2
    assert job.result["status"] == "parsed"
    assert meal.parse_status == ParseStatus.PARSED
    assert meal.parser == "local"
    assert meal.parse_error == ""
    assert meal.parsed_at is not None
    assert [item.name for item in meal.items.all()] == ["eggs", "toast"]
    assert meal.calories > 0
    assert job.result["calories"] == str(meal.calories)
    assert_totals_are_item_sums(meal)


def test_parse_job_logs_each_progress_step(user):
    meal, job = create_meal(user)

    run_until_idle(QUEUE)

    lines = log_lines(job)
    assert len(lines) == 4
    assert re.fullmatch(
        rf"loaded meal {meal.id} \(27 characters\) in \d+ ms; parsing with the local parser", lines[0]
    )
    assert re.fullmatch(r"local parser returned 2 items in \d+ ms", lines[1])
    assert re.fullmatch(r"checked 2 items in \d+ ms: [\d.]+ kcal, [\d.]+ g carbs", lines[2])
    assert re.fullmatch(r"stored 2 items in \d+ ms", lines[3])


def test_parse_job_reports_progress_10_50_70_100(user, monkeypatch):
    meal, job = create_meal(user)
    seen = []
    original = jobs.set_progress

    def record_progress(job, value, message=None):
        seen.append((value, Job.objects.get(pk=job.pk).progress))
        return original(job, value, message)

    monkeypatch.setattr(jobs, "set_progress", record_progress)

    run_until_idle(QUEUE)

    assert [value for value, _ in seen] == [10, 50, 70, 100]
    # Each step starts from the progress stored by the step before it.
    assert [stored for _, stored in seen] == [0, 10, 50, 70]


def test_reparse_replaces_items_without_duplicates(user):
    meal, _ = create_meal(user)
    run_until_idle(QUEUE)
    first_items = list(meal.items.values_list("name", "grams", "calories"))

    job = services.meal_reparse(meal=meal)
    meal.refresh_from_db()
    assert meal.parse_status == ParseStatus.PENDING
    run_until_idle(QUEUE)

    meal.refresh_from_db()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert list(meal.items.values_list("name", "grams", "calories")) == first_items
    assert FoodItem.objects.filter(meal=meal).count() == 2
    assert meal.parse_status == ParseStatus.PARSED
    assert_totals_are_item_sums(meal)


def test_retry_after_stall_does_not_duplicate_items(user):
    meal, job = create_meal(user)
    run_until_idle(QUEUE)
    # The worker stored the items, then died before marking the job completed.
    Job.objects.filter(pk=job.pk).update(
        state=JobState.ACTIVE, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert jobs.recover_stalled() == 1
    job.refresh_from_db()
    assert job.state == JobState.DELAYED
    assert job.error_kind == ErrorKind.STALLED

    make_due(job)
    run_until_idle(QUEUE)

    job.refresh_from_db()
    meal.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 2
    assert meal.items.count() == 2
    assert_totals_are_item_sums(meal)


def test_store_replaces_stale_items_and_recomputes_totals(user):
    meal, _ = create_meal(user)
    FoodItemFactory(meal=meal, name="stale item", calories=Decimal("999.00"))
    Meal.objects.filter(pk=meal.pk).update(calories=Decimal("1234.00"))

    run_until_idle(QUEUE)

    meal.refresh_from_db()
    assert not meal.items.filter(name="stale item").exists()
    assert meal.items.count() == 2
    assert meal.calories != Decimal("1234.00")
    assert_totals_are_item_sums(meal)


def test_store_rounds_items_before_summing(user):
    parsed = get_parser().parse("2 eggs and a slice of toast")
    meal, job = create_meal(user)

    stored = services.meal_store_parse(
        meal_id=meal.id, job_id=job.id, description_hash=meal.description_hash, parser="local", items=parsed.items
    )

    assert stored.calories == sum((item.calories for item in stored.items.all()), Decimal("0.00"))
    assert_totals_are_item_sums(stored)


def test_unmatched_food_marks_meal_needs_review(user, client):
    meal, job = create_meal(user, "2 eggs and 3 zorblax")

    run_until_idle(QUEUE)

    meal.refresh_from_db()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert meal.parse_status == ParseStatus.NEEDS_REVIEW
    assert "no USDA food matched 'zorblax'" in meal.parse_error
    assert meal.items.count() == 1
    assert "needs review: no USDA food matched 'zorblax'" in log_lines(job)[2]


def test_description_without_food_fails_meal(user, api_client):
    meal, job = create_meal(user, "went for a long walk in the park")
    FoodItemFactory(meal=meal)

    run_until_idle(QUEUE)

    job.refresh_from_db()
    meal.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.dead_lettered_at is not None
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.attempts_made == 1
    assert meal.parse_status == ParseStatus.FAILED
    assert meal.parser == "local"
    assert meal.parse_error.startswith("no food items found in description")
    assert meal.items.count() == 0
    assert meal.calories == Decimal("0.00")

    body = api_client.get(f"/api/meals/{meal.id}").json()
    assert body["parse_status"] == "failed"
    assert body["parse_error"] == meal.parse_error
    assert body["items"] == []


def test_meal_deleted_before_job_runs_is_terminal(user):
    meal, job = create_meal(user)
    meal_id = meal.id
    meal.delete()

    ran = run_until_idle(QUEUE)

    assert ran == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TERMINAL
    assert job.attempts_made == 1
    assert f"Meal {meal_id} does not exist" in job.error
    assert not Meal.objects.exists()
    assert not FoodItem.objects.exists()


class EditingParser:
    """The real local parser, with the meal's description edited while it parses."""

    name = "local"

    def __init__(self, meal_id, new_descriptions):
        self.inner = get_parser()
        self.meal_id = meal_id
        self.new_descriptions = list(new_descriptions)

    def parse(self, description, attempt=1):
        result = self.inner.parse(description, attempt=attempt)
        if self.new_descriptions:
            meal = Meal.objects.get(pk=self.meal_id)
            meal.description = self.new_descriptions.pop(0)
            meal.save()
        return result


def test_description_edited_during_parse_discards_stale_result(user, monkeypatch):
    meal, job = create_meal(user, "2 eggs and a slice of toast")
    monkeypatch.setattr(tasks, "get_parser", lambda: EditingParser(meal.id, ["a cup of rice"]))

    run_until_idle(QUEUE)

    job.refresh_from_db()
    meal.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts_made == 1
    assert [item.name for item in meal.items.all()] == ["rice"]
    assert meal.description == "a cup of rice"
    assert_totals_are_item_sums(meal)
    assert any("changed during the parse; result discarded" in line for line in log_lines(job))


def test_description_edited_on_every_parse_retries_later(user, monkeypatch):
    meal, job = create_meal(user, "2 eggs")
    edits = [f"{count} eggs" for count in range(3, 3 + tasks.MAX_PARSES_PER_ATTEMPT)]
    monkeypatch.setattr(tasks, "get_parser", lambda: EditingParser(meal.id, edits))

    run_until_idle(QUEUE)

    job.refresh_from_db()
    meal.refresh_from_db()
    assert job.state == JobState.DELAYED
    assert job.error_kind == ErrorKind.RETRYABLE
    assert "changed 3 times during one attempt" in job.error
    assert meal.items.count() == 0
    assert meal.parse_status == ParseStatus.PENDING


def test_superseded_job_leaves_meal_to_newer_job(user):
    meal, old_job = create_meal(user)
    new_job = services.meal_reparse(meal=meal)
    Job.objects.filter(pk=new_job.pk).update(run_at=timezone.now() + timedelta(hours=1), state=JobState.DELAYED)

    run_until_idle(QUEUE)

    old_job.refresh_from_db()
    meal.refresh_from_db()
    assert old_job.state == JobState.COMPLETED
    assert old_job.result == {"meal_id": meal.id, "stored": False, "reason": "superseded"}
    assert meal.items.count() == 0
    assert meal.parse_status == ParseStatus.PENDING


def test_superseded_job_failure_does_not_fail_meal(user):
    meal, old_job = create_meal(user)
    run_until_idle(QUEUE)
    services.meal_reparse(meal=meal)

    result = services.meal_mark_parse_failed(meal_id=meal.id, job_id=old_job.id, reason="late failure")

    assert result is None
    meal.refresh_from_db()
    assert meal.parse_status == ParseStatus.PENDING
    assert meal.items.count() == 2


def test_longest_api_description_is_parsed(user):
    assert DESCRIPTION_MAX_LENGTH <= MAX_DESCRIPTION_LENGTH
    description = ("2 eggs and a slice of toast. " + "It was a quiet and sunny morning " * 70)[:DESCRIPTION_MAX_LENGTH]
    meal, job = create_meal(user, description)

    run_until_idle(QUEUE)

    job.refresh_from_db()
    meal.refresh_from_db()
    assert len(meal.description) == DESCRIPTION_MAX_LENGTH
    assert job.state == JobState.COMPLETED
    assert meal.parse_status in (ParseStatus.PARSED, ParseStatus.NEEDS_REVIEW)
    assert meal.items.count() >= 2


def test_too_many_items_fails_with_reason(user):
    description = ("2 eggs, " * 300)[:DESCRIPTION_MAX_LENGTH].rstrip(", ")
    meal, job = create_meal(user, description)

    run_until_idle(QUEUE)

    job.refresh_from_db()
    meal.refresh_from_db()
    assert job.state == JobState.FAILED
    assert meal.parse_status == ParseStatus.FAILED
    assert meal.parse_error == "250 food items; the maximum per meal is 100"
    assert meal.items.count() == 0


def test_parse_jobs_not_rate_limited_with_local_parser(user):
    _, job = create_meal(user)

    assert services.parse_is_rate_limited() is False
    assert job.rate_limited is False
