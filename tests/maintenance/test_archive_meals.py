from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from maintenance.services import meals_archive_old
from meals.models import FoodItem, Meal
from summaries.models import DailySummary
from tests.factories import FoodItemFactory, MealFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=365)


def meal_eaten_at(moment, **fields):
    return MealFactory(eaten_at=moment, **fields)


def computed_summary(meal):
    """Store the meal's date as summarised; saving the meal may already have added a stale row."""
    summary, _ = DailySummary.objects.update_or_create(
        user=meal.owner,
        local_date=meal.local_date,
        defaults={"meal_count": 1, "calories": Decimal("250.00"), "needs_recompute": False, "computed_at": NOW},
    )
    return summary


@pytest.mark.parametrize(
    ("eaten_at", "archived"),
    [
        (CUTOFF - timedelta(seconds=1), True),
        (CUTOFF, False),
        (CUTOFF + timedelta(seconds=1), False),
    ],
    ids=["one-second-before-cutoff", "exactly-at-cutoff", "one-second-after-cutoff"],
)
def test_meal_age_at_cutoff_boundary(eaten_at, archived):
    meal = meal_eaten_at(eaten_at)

    outcome = meals_archive_old(now=NOW)

    meal.refresh_from_db()
    assert meal.archived is archived
    assert (meal.archived_at is not None) is archived
    assert outcome.counts == {"meals": 1 if archived else 0}


@pytest.mark.parametrize("time_zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"])
def test_cutoff_holds_in_every_time_zone(time_zone):
    owner = UserFactory(time_zone=time_zone)
    before = meal_eaten_at(CUTOFF - timedelta(seconds=1), owner=owner)
    at = meal_eaten_at(CUTOFF, owner=owner)

    meals_archive_old(now=NOW)

    before.refresh_from_db()
    at.refresh_from_db()
    assert before.archived is True
    assert at.archived is False


def test_archiving_keeps_items_summary_and_other_fields():
    meal = meal_eaten_at(CUTOFF - timedelta(days=10))
    items = FoodItemFactory.create_batch(2, meal=meal)
    summary = computed_summary(meal)
    updated_at = Meal.objects.get(pk=meal.pk).updated_at

    outcome = meals_archive_old(now=NOW)

    meal.refresh_from_db()
    summary.refresh_from_db()
    assert outcome.counts == {"meals": 1}
    assert meal.archived is True
    assert meal.updated_at == updated_at
    assert meal.calories == Decimal("250.00")
    assert sorted(FoodItem.objects.filter(meal=meal).values_list("pk", flat=True)) == sorted(i.pk for i in items)
    assert summary.meal_count == 1
    assert summary.calories == Decimal("250.00")
    assert summary.needs_recompute is False


def test_second_run_changes_nothing():
    meal = meal_eaten_at(CUTOFF - timedelta(days=1))
    meals_archive_old(now=NOW)
    archived_at = Meal.objects.get(pk=meal.pk).archived_at

    outcome = meals_archive_old(now=NOW + timedelta(minutes=1))

    assert outcome.counts == {"meals": 0}
    assert Meal.objects.get(pk=meal.pk).archived_at == archived_at


def test_dry_run_counts_and_changes_nothing():
    meals = [meal_eaten_at(CUTOFF - timedelta(days=n + 1)) for n in range(3)]
    meal_eaten_at(NOW - timedelta(days=1))

    outcome = meals_archive_old(now=NOW, dry_run=True, batch_size=1, max_batches=1)

    assert outcome.counts == {"meals": 3}
    assert outcome.more is False
    assert outcome.message.startswith("would archive 3 meals eaten before 2025-12-04T03:00:00")
    assert Meal.objects.filter(pk__in=[meal.pk for meal in meals], archived=False).count() == 3


def test_batch_bound_reports_more():
    for n in range(5):
        meal_eaten_at(CUTOFF - timedelta(days=n + 1))

    first = meals_archive_old(now=NOW, batch_size=2, max_batches=2)
    second = meals_archive_old(now=NOW, batch_size=2, max_batches=2)

    assert first.counts == {"meals": 4}
    assert first.more is True
    assert second.counts == {"meals": 1}
    assert second.more is False


def test_archived_meal_hidden_from_api_while_summary_stays(api_client, user):
    old = meal_eaten_at(CUTOFF - timedelta(days=2), owner=user)
    recent = meal_eaten_at(NOW - timedelta(days=1), owner=user)
    computed_summary(old)

    meals_archive_old(now=NOW)

    listed = api_client.get("/api/meals")
    assert listed.status_code == 200
    assert [meal["id"] for meal in listed.json()["items"]] == [recent.pk]
    summaries = api_client.get("/api/summaries", {"start": old.local_date, "end": old.local_date})
    assert summaries.status_code == 200
    assert [(row["local_date"], row["meal_count"], row["calories"]) for row in summaries.json()] == [
        (old.local_date.isoformat(), 1, "250.00")
    ]
    assert DailySummary.objects.filter(user=user, local_date=old.local_date).exists()


@pytest.fixture
def admin_client(db):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


def changelist_ids(response):
    return sorted(meal.pk for meal in response.context["cl"].result_list)


def test_admin_list_hides_archived_by_default(admin_client):
    old = meal_eaten_at(CUTOFF - timedelta(days=2))
    recent = meal_eaten_at(NOW - timedelta(days=1))
    meals_archive_old(now=NOW)

    default = admin_client.get("/admin/meals/meal/")
    archived = admin_client.get("/admin/meals/meal/", {"archived": "yes"})
    everything = admin_client.get("/admin/meals/meal/", {"archived": "all"})

    assert default.status_code == 200
    assert changelist_ids(default) == [recent.pk]
    assert changelist_ids(archived) == [old.pk]
    assert changelist_ids(everything) == sorted([old.pk, recent.pk])


def test_admin_unarchive_survives_nightly_run(admin_client, api_client, user):
    meal = meal_eaten_at(CUTOFF - timedelta(days=2), owner=user)
    FoodItemFactory(meal=meal)
    meals_archive_old(now=NOW)

    response = admin_client.post(
        "/admin/meals/meal/?archived=yes", {"action": "unarchive", "_selected_action": [meal.pk]}, follow=True
    )
    outcome = meals_archive_old(now=NOW + timedelta(days=1))

    assert response.status_code == 200
    assert "Restored 1 meals." in [str(message) for message in response.context["messages"]]
    meal.refresh_from_db()
    assert meal.archived is False
    assert meal.archived_at is not None
    assert outcome.counts == {"meals": 0}
    listed = api_client.get("/api/meals").json()["items"]
    assert [(row["id"], len(row["items"])) for row in listed] == [(meal.pk, 1)]
