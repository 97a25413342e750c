import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from meals.models import Meal
from nutricoach.jobs.models import Job, JobState
from tests.factories import MealFactory

pytestmark = pytest.mark.django_db


def post_meal(client, body, **extra):
    return client.post("/api/meals/parse", data=json.dumps(body), content_type="application/json", **extra)


def assert_error_shape(response, status, code):
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_parse_accepts_meal_and_enqueues_job(api_client, user):
    response = post_meal(api_client, {"description": "  2 eggs and a slice of toast ", "meal_name": "Breakfast"})

    assert response.status_code == 202
    body = response.json()
    meal = Meal.objects.get(pk=body["meal_id"])
    assert meal.owner == user
    assert meal.description == "2 eggs and a slice of toast"
    assert meal.name == "Breakfast"
    assert meal.parse_status == "pending"
    job = Job.objects.get(pk=body["job_id"])
    assert job.queue == "meal-processing"
    assert job.task == "meals.parse_meal"
    assert job.payload == {"meal_id": meal.id}
    assert job.owner == user
    assert job.state == JobState.WAITING
    assert body["status"] == "waiting"
    assert meal.parse_job_id == job.id


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ("", "must not be empty"),
        ("   \n\t ", "must not be empty"),
        ("x" * 2001, "2001 characters"),
        ("eggs\x00 and toast", "U+0000"),
        ("eggs\x1b[31m", "U+001B"),
    ],
)
def test_parse_rejects_bad_description(api_client, description, reason):
    response = post_meal(api_client, {"description": description})

    error = assert_error_shape(response, 422, "invalid_input")
    assert error["details"][0]["field"] == "description"
    assert reason in error["details"][0]["message"]
    assert not Meal.objects.exists()
    assert not Job.objects.exists()


def test_parse_accepts_2000_characters_after_trimming(api_client):
    response = post_meal(api_client, {"description": "  " + "a" * 2000 + "  "})

    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": 123}, "description"),
        ({"description": ["eggs"]}, "description"),
        ({"description": "eggs", "calories": 100}, "calories"),
        ({}, "description"),
        ({"description": "eggs", "eaten_at": 5}, "eaten_at"),
    ],
)
def test_parse_rejects_wrong_types_and_unknown_fields(api_client, body, field):
    response = post_meal(api_client, body)

    error = assert_error_shape(response, 422, "invalid_input")
    assert field in [detail["field"] for detail in error["details"]]
    assert not Meal.objects.exists()


def test_parse_rejects_malformed_json(api_client):
    response = api_client.post("/api/meals/parse", data="{not json", content_type="application/json")

    assert response.status_code in (400, 422)
    assert "error" in response.json()
    assert not Meal.objects.exists()


def test_parse_reads_naive_eaten_at_in_user_zone(api_client, user):
    response = post_meal(api_client, {"description": "soup", "eaten_at": "2026-07-01T23:30:00"})

    meal = Meal.objects.get(pk=response.json()["meal_id"])
    assert meal.eaten_at.isoformat() == "2026-07-01T21:30:00+00:00"
    assert str(meal.local_date) == "2026-07-01"


def test_parse_rejects_date_only_eaten_at(api_client):
    response = post_meal(api_client, {"description": "soup", "eaten_at": "2026-07-01"})

    error = assert_error_shape(response, 422, "invalid_input")
    assert "date without a time" in error["message"]
    assert not Meal.objects.exists()


def test_parse_rejects_eaten_at_in_dst_gap(api_client):
    response = post_meal(api_client, {"description": "soup", "eaten_at": "2026-03-29T02:30:00"})

    error = assert_error_shape(response, 422, "invalid_input")
    assert "does not exist in Europe/Berlin" in error["message"]


def test_parse_requires_authentication(db):
    response = post_meal(Client(), {"description": "soup"})

    assert_error_shape(response, 401, "not_authenticated")
    assert not Meal.objects.exists()


def test_parse_rejects_invalid_token(db):
    response = post_meal(Client(HTTP_AUTHORIZATION="Bearer nc_wrong"), {"description": "soup"})

    assert_error_shape(response, 401, "not_authenticated")


def test_revoked_token_is_rejected(api_client, token):
    token.revoked_at = token.created_at
    token.save()

    response = api_client.get("/api/meals")

    assert response.status_code == 401


def test_session_login_requires_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = post_meal(client, {"description": "soup"})

    assert response.status_code == 403
    assert not Meal.objects.exists()


def test_session_login_reads_own_meals(user):
    client = Client()
    client.force_login(user)
    MealFactory(owner=user)

    response = client.get("/api/meals")

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_get_meal_of_another_user_is_404(api_client, other_client):
    meal_id = post_meal(api_client, {"description": "soup"}).json()["meal_id"]

    response = other_client.get(f"/api/meals/{meal_id}")

    assert_error_shape(response, 404, "not_found")
    assert api_client.get(f"/api/meals/{meal_id}").status_code == 200


def test_list_meals_filters_by_local_date(api_client, user):
    MealFactory(owner=user, eaten_at=datetime(2026, 12, 1, 23, 30, tzinfo=UTC))
    MealFactory(owner=user, eaten_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    MealFactory(eaten_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))

    response = api_client.get("/api/meals?date=2026-12-01")

    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert api_client.get("/api/meals?date=2026-12-02").json()["count"] == 1


def test_list_meals_rejects_bad_date(api_client):
    response = api_client.get("/api/meals?date=yesterday")

    assert_error_shape(response, 422, "invalid_input")


def test_huge_meal_id_is_422_not_500(api_client):
    response = api_client.get("/api/meals/99999999999999999999999")

    assert_error_shape(response, 422, "invalid_input")


def test_unknown_api_path_uses_error_shape(api_client):
    response = api_client.get("/api/nothing-here")

    assert_error_shape(response, 404, "not_found")


def test_openapi_docs_are_served(client):
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/openapi.json").json()["info"]["title"] == "NutriCoach API"


def test_post_without_credentials_is_401_not_csrf(db):
    client = Client(enforce_csrf_checks=True)

    response = post_meal(client, {"description": "soup"})

    assert_error_shape(response, 401, "not_authenticated")


def test_validation_message_has_no_library_prefix(api_client):
    response = post_meal(api_client, {"description": "   "})

    message = response.json()["error"]["details"][0]["message"]
    assert message == "description must not be empty or only whitespace"


@pytest.mark.parametrize("value", ["0001-01-01T00:30:00", "0001-01-01T00:30:00+01:00", "1899-12-31T12:00:00Z"])
def test_parse_rejects_eaten_at_before_1900(api_client, value):
    response = post_meal(api_client, {"description": "soup", "eaten_at": value})

    error = assert_error_shape(response, 422, "invalid_input")
    assert "is before 1900" in error["message"]
    assert not Meal.objects.exists()
