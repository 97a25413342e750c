"""Property-based requests from the OpenAPI schema (Schemathesis) with valid and invalid tokens.

Every operation of /api/openapi.json gets generated requests, each sent with the user's
valid token and again with an invalid one: no response may be a 5xx, invalid tokens must
get 401 in the error shape, and no response may contain another user's meal, job or goal.
"""

import json
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings

from meals.models import Meal
from meals.services import meal_create_for_parsing
from nutricoach.wsgi import application
from tests.factories import ApiTokenFactory, DailySummaryFactory, GoalFactory, UserFactory

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)

OTHER_DESCRIPTION = "other-user-private-meal with 3 eggs"
OTHER_GOAL_CALORIES = "1777.77"
# Each operation gets this many generated requests, each sent twice; the whole module
# runs in about 10 s on 2 cores.
EXAMPLES_PER_OPERATION = 50


@pytest.fixture(autouse=True)
def keep_test_connection():
    """Keep the test transaction's connection open across WSGI requests, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def accounts():
    """The caller with a valid token, invalid tokens, and another user's data."""
    caller = ApiTokenFactory(user=UserFactory(time_zone="Europe/Berlin"))
    other = UserFactory(email="other-user-private@example.com")
    meal, job = meal_create_for_parsing(owner=other, description=OTHER_DESCRIPTION)
    goal = GoalFactory(user=other, calories=OTHER_GOAL_CALORIES)
    DailySummaryFactory(user=other, local_date=timezone.localdate(), calories=OTHER_GOAL_CALORIES)
    revoked = ApiTokenFactory(user=caller.user, revoked_at=timezone.now() - timedelta(minutes=1))
    inactive = ApiTokenFactory(user=UserFactory(is_active=False))
    meal_create_for_parsing(owner=caller.user, description="2 eggs and a slice of toast")
    return {
        "valid": caller.raw,
        "invalid": [
            "nc_" + "x" * 43, revoked.raw, inactive.raw, "", "x" * 300, caller.raw + "x", "nc_\u00e9\u00e8",
        ],
        "other_ids": {"meal_id": meal.id, "job_id": str(job.id), "goal_id": goal.id},
        "other_markers": [OTHER_DESCRIPTION, str(job.id), OTHER_GOAL_CALORIES, other.email],
    }


def assert_no_other_user_data(response, accounts):
    # A 404 message may repeat an id the request itself sent; that reveals nothing.
    markers = [marker for marker in accounts["other_markers"] if marker not in response.request.url]
    for marker in markers:
        assert marker not in response.text, f"{response.request.method} {response.request.url} returned {marker!r}"


def assert_error_shape(response, status, code):
    assert response.status_code == status, (response.request.method, response.request.url, response.text[:300])
    body = json.loads(response.text)
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_or_leaks(case, accounts):
    valid = {"Authorization": f"Bearer {accounts['valid']}"}
    response = case.call(headers=valid)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    assert_no_other_user_data(response, accounts)
    if case.method.upper() != case.operation.method.upper():
        # Schemathesis also sends methods the path does not serve, such as TRACE.
        # NOTE: Ninja returns these 405 responses with a plain-text body, outside the error shape.
        assert response.status_code == 405
        return

    invalid = accounts["invalid"][hash(repr(case.path_parameters)) % len(accounts["invalid"])]
    response = case.call(headers={"Authorization": f"Bearer {invalid}"})
    assert_error_shape(response, 401, "not_authenticated")

    if case.path_parameters:
        # The same request for another user's object must look like a missing one.
        case.path_parameters = {name: accounts["other_ids"].get(name, value)
                                for name, value in case.path_parameters.items()}
        response = case.call(headers=valid)
        assert_error_shape(response, 404, "not_found")
        assert_no_other_user_data(response, accounts)


def test_invalid_token_post_gets_401_not_csrf_403(db):
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION="Bearer nc_wrong")

    response = client.post("/api/meals/parse", {"description": "soup"}, content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not Meal.objects.exists()


def test_meal_list_rejects_offset_past_64_bits(api_client):
    response = api_client.get("/api/meals", {"offset": 2**63})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == "offset"
