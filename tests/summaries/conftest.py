from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meals.models import Meal
from tests.factories import MealFactory


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def add_meals(owner, eaten_at_list, *, calories=Decimal("500.00"), **fields):
    """Insert meals without Meal.save(), so no summary is marked stale; return them.

    Tests that are about the nightly run use this to start from meals alone, as if the
    meals were logged on the day; tests of the stale marking use MealFactory instead.
    """
    meals = [
        MealFactory.build(owner=owner, eaten_at=eaten_at, calories=calories, **fields)
        for eaten_at in eaten_at_list
    ]
    return Meal.objects.bulk_create(meals)


@pytest.fixture
def notification_jobs():
    """Return a function listing (user_id, kind, period_key, data) of enqueued notifications."""
    from nutricoach.jobs.models import Job

    def collect(kind=None):
        jobs = Job.objects.filter(task="notifications.send").order_by("created_at", "idempotency_key")
        rows = [
            (job.payload["user_id"], job.payload["kind"], job.payload["period_key"], job.payload["data"])
            for job in jobs
        ]
        return [row for row in rows if kind is None or row[1] == kind]

    return collect
