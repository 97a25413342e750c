import json

import pytest

from summaries.models import Goal
from tests.factories import DailySummaryFactory, GoalFactory

pytestmark = pytest.mark.django_db


def post_json(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_create_goal_activates_it(api_client, user):
    old = GoalFactory(user=user, is_active=True)

    response = post_json(api_client, "/api/goals", {"calories": 1800, "protein": 90})

    assert response.status_code == 201
    assert response.json()["is_active"] is True
    old.refresh_from_db()
    assert old.is_active is False
    assert Goal.objects.filter(user=user, is_active=True).count() == 1


@pytest.mark.parametrize(
    "body",
    [{"calories": 0}, {"calories": -5}, {"calories": "lots"}, {"calories": 2000, "fat": -1}, {"calories": 2000, "x": 1}],
)
def test_create_goal_rejects_bad_values(api_client, body):
    response = post_json(api_client, "/api/goals", body)

    assert response.status_code == 422
    assert "error" in response.json()
    assert not Goal.objects.exists()


def test_activate_goal_switches_active(api_client, user):
    first = GoalFactory(user=user, is_active=True)
    second = GoalFactory(user=user, is_active=False)

    response = api_client.post(f"/api/goals/{second.id}/activate")

    assert response.status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)


def test_activate_goal_of_another_user_is_404(api_client):
    goal = GoalFactory(is_active=False)

    response = api_client.post(f"/api/goals/{goal.id}/activate")

    assert response.status_code == 404
    goal.refresh_from_db()
    assert goal.is_active is False


def test_list_goals_shows_only_own(api_client, user):
    GoalFactory(user=user)
    GoalFactory()

    assert len(api_client.get("/api/goals").json()) == 1


def test_summaries_in_range(api_client, user):
    DailySummaryFactory(user=user, local_date="2026-12-01")
    DailySummaryFactory(user=user, local_date="2026-12-03")
    DailySummaryFactory(local_date="2026-12-02")

    response = api_client.get("/api/summaries?start=2026-12-01&end=2026-12-02")

    assert response.status_code == 200
    assert [row["local_date"] for row in response.json()] == ["2026-12-01"]


@pytest.mark.parametrize(
    "query",
    ["start=2026-12-03&end=2026-12-01", "start=2020-01-01&end=2026-12-01", "start=bad&end=2026-12-01", "start=2026-12-01"],
)
def test_summaries_reject_bad_range(api_client, query):
    response = api_client.get(f"/api/summaries?{query}")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
