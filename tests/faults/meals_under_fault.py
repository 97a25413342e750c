"""Meals to parse under a fault, and the checks that none was lost or parsed twice."""

from collections import Counter, defaultdict

from meals.models import FoodItem, Meal, ParseStatus
from meals.parsing.local import LocalParser
from meals.services import PARSE_TASK, meal_create_for_parsing
from nutricoach.jobs.models import Job, JobAttempt, JobState
from tests.factories import UserFactory

# Descriptions the local parser reads without review, with different item counts.
DESCRIPTIONS = [
    "2 eggs and a slice of toast",
    "a cup of rice and 2 eggs",
    "1 banana",
    "half a cup of oatmeal with 1 tbsp honey",
    "3 slices of bacon, 2 eggs and a glass of orange juice",
]


def expected_item_counts():
    """Return the number of items the local parser finds in each description."""
    parser = LocalParser()
    return {description: len(parser.parse(description).items) for description in DESCRIPTIONS}


def create_meals(count, *, users=10):
    """Create `count` meals with parse jobs through the service, spread over users; return the meal ids."""
    owners = [UserFactory() for _ in range(users)]
    meal_ids = []
    for number in range(count):
        meal, _ = meal_create_for_parsing(
            owner=owners[number % users], description=DESCRIPTIONS[number % len(DESCRIPTIONS)]
        )
        meal_ids.append(meal.id)
    return meal_ids


def finished_count(meal_ids):
    """Return how many of the meals' parse jobs completed or failed."""
    job_ids = Meal.objects.filter(pk__in=meal_ids).values("parse_job_id")
    return Job.objects.filter(id__in=job_ids, state__in=[JobState.COMPLETED, JobState.FAILED]).count()


def stranded_jobs(worker_pids):
    """Return the ids of parse jobs left active by the given (killed) worker processes."""
    active = Job.objects.filter(task=PARSE_TASK, state=JobState.ACTIVE).values_list("id", "worker")
    return {job_id for job_id, worker in active if worker.rsplit(":", 1)[-1] in {str(pid) for pid in worker_pids}}


def assert_nothing_lost(meal_ids, *, stranded=()):
    """Assert every meal is parsed once or failed with a reason, and the attempts add up.

    `stranded` are jobs a killed worker left active: each must show one stalled attempt
    before it completed.
    """
    expected = expected_item_counts()
    meals = {meal.id: meal for meal in Meal.objects.filter(pk__in=meal_ids)}
    assert len(meals) == len(meal_ids)
    jobs = {job.id: job for job in Job.objects.filter(pk__in=[meal.parse_job_id for meal in meals.values()])}
    assert len(jobs) == len(meal_ids)
    positions = defaultdict(list)
    for meal_id, position in FoodItem.objects.filter(meal_id__in=meal_ids).values_list("meal_id", "position"):
        positions[meal_id].append(position)
    attempts = defaultdict(list)
    for job_id, number, outcome, finished_at in JobAttempt.objects.filter(job_id__in=list(jobs)).values_list(
        "job_id", "number", "outcome", "finished_at"
    ).order_by("job_id", "number"):
        attempts[job_id].append((number, outcome, finished_at))

    for meal in meals.values():
        job = jobs[meal.parse_job_id]
        outcomes = [outcome for _, outcome, _ in attempts[job.id]]
        assert [number for number, _, _ in attempts[job.id]] == list(range(1, job.attempts_made + 1)), job.id
        assert all(finished_at is not None for _, _, finished_at in attempts[job.id]), job.id
        if meal.parse_status == ParseStatus.FAILED:
            assert job.state == JobState.FAILED, meal.id
            assert job.dead_lettered_at is not None, meal.id
            assert meal.parse_error, meal.id
            assert job.error, job.id
            assert positions[meal.id] == [], meal.id
            assert "completed" not in outcomes, job.id
        else:
            assert meal.parse_status == ParseStatus.PARSED, (meal.id, meal.parse_status, meal.parse_error)
            assert job.state == JobState.COMPLETED, (job.id, job.state, job.error)
            assert sorted(positions[meal.id]) == list(range(expected[meal.description])), meal.id
            assert outcomes.count("completed") == 1, (job.id, outcomes)
            assert outcomes[-1] == "completed", (job.id, outcomes)
            assert set(outcomes[:-1]) <= {"stalled"}, (job.id, outcomes)

    for job_id in stranded:
        assert "stalled" in [outcome for _, outcome, _ in attempts[job_id]], job_id
    outcome_counts = Counter(outcome for rows in attempts.values() for _, outcome, _ in rows)
    assert outcome_counts["stalled"] >= len(stranded)
    return outcome_counts
