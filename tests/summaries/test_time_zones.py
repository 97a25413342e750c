import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from meals import services as meal_services
from meals.models import Meal
from summaries import services
from summaries.models import DailySummary
from tests.factories import ApiTokenFactory, UserFactory

pytestmark = pytest.mark.django_db

ZONES = ["America/Los_Angeles", "Europe/Berlin", "Asia/Kathmandu", "Pacific/Kiritimati"]


def local(zone, *args):
    return datetime(*args, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("zone", ZONES)
def test_meals_near_midnight_land_on_local_date(zone):
    user = UserFactory(time_zone=zone)
    before, _ = meal_services.meal_create_for_parsing(
        owner=user, description="late snack", eaten_at=local(zone, 2026, 11, 10, 23, 59, 30)
    )
    after, _ = meal_services.meal_create_for_parsing(
        owner=user, description="midnight snack", eaten_at=local(zone, 2026, 11, 11, 0, 0, 30)
    )

    # One minute after the 11th ended in this zone.
    result = services.summaries_summarise_ended_days(now=local(zone, 2026, 11, 12, 0, 1))

    assert before.local_date == date(2026, 11, 10)
    assert after.local_date == date(2026, 11, 11)
    assert sorted(result.summarised + result.recomputed) == [
        (user.pk, date(2026, 11, 10)), (user.pk, date(2026, 11, 11)),
    ]
    assert list(DailySummary.objects.filter(user=user).order_by("local_date").values_list("meal_count", flat=True)) == [1, 1]


@pytest.mark.parametrize("zone", ZONES)
def test_day_is_not_summarised_before_local_midnight(zone):
    user = UserFactory(time_zone=zone)
    meal_services.meal_create_for_parsing(owner=user, description="dinner", eaten_at=local(zone, 2026, 11, 10, 20))

    early = services.summaries_summarise_ended_days(now=local(zone, 2026, 11, 10, 23, 59, 59))
    on_time = services.summaries_summarise_ended_days(now=local(zone, 2026, 11, 11, 0, 0))

    assert early.summarised == []
    assert on_time.summarised == [(user.pk, date(2026, 11, 10))]


def client_for(user):
    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(user=user).raw}")


def post_meal(client, eaten_at):
    body = {"description": "2 eggs", "eaten_at": eaten_at}
    return client.post("/api/meals/parse", data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("zone", ZONES)
def test_api_reads_naive_time_in_user_zone(zone):
    user = UserFactory(time_zone=zone)

    response = post_meal(client_for(user), "2026-11-10T23:59:00")

    assert response.status_code == 202
    meal = Meal.objects.get(pk=response.json()["meal_id"])
    assert meal.eaten_at == local(zone, 2026, 11, 10, 23, 59)
    assert meal.local_date == date(2026, 11, 10)


@pytest.mark.parametrize("zone", ZONES)
def test_api_keeps_explicit_offset(zone):
    user = UserFactory(time_zone=zone)

    response = post_meal(client_for(user), "2026-11-10T23:30:00+00:00")

    assert response.status_code == 202
    meal = Meal.objects.get(pk=response.json()["meal_id"])
    assert meal.local_date == datetime(2026, 11, 10, 23, 30, tzinfo=UTC).astimezone(ZoneInfo(zone)).date()


@pytest.mark.parametrize("zone", ZONES)
def test_api_rejects_date_only_in_every_zone(zone):
    user = UserFactory(time_zone=zone)

    response = post_meal(client_for(user), "2026-11-10")

    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == "eaten_at"
    assert "'2026-11-10' is a date without a time; send a datetime such as" in detail["message"]
    assert not Meal.objects.exists()


@pytest.mark.parametrize(
    ("zone", "missing_time"),
    [("Europe/Berlin", "2026-03-29T02:30:00"), ("America/Los_Angeles", "2026-03-08T02:30:00")],
)
def test_api_rejects_time_skipped_by_dst(zone, missing_time):
    user = UserFactory(time_zone=zone)

    response = post_meal(client_for(user), missing_time)

    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert f"does not exist in {zone}" in detail["message"]
    assert not Meal.objects.exists()


def test_api_reads_repeated_dst_hour_as_first():
    user = UserFactory(time_zone="Europe/Berlin")

    response = post_meal(client_for(user), "2026-10-25T02:30:00")

    assert response.status_code == 202
    meal = Meal.objects.get(pk=response.json()["meal_id"])
    # 02:30 happens twice that night; the first one is still summer time, UTC+2.
    assert meal.eaten_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert meal.local_date == date(2026, 10, 25)
