import json
import uuid

import pytest
from django.utils import timezone

from meals.services import meal_create_for_parsing
from nutricoach.jobs.models import JobState
from nutricoach.jobs.runner import run_until_idle
from tests.dashboard.conftest import logged_in_client
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db


def page_config(response):
    """Return the JSON the page hands to its script."""
    body = response.content.decode()
    start = body.index('<script id="job-status-config" type="application/json">') + len(
        '<script id="job-status-config" type="application/json">'
    )
    return json.loads(body[start:body.index("</script>", start)])


def test_anonymous_redirected_to_login(client, user):
    job = JobFactory(owner=user)

    response = client.get(f"/jobs/{job.pk}/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/jobs/{job.pk}/"


def test_other_user_gets_404(user):
    job = JobFactory(owner=user)

    response = logged_in_client(UserFactory()).get(f"/jobs/{job.pk}/")

    assert response.status_code == 404


def test_staff_who_is_not_owner_gets_404(user):
    job = JobFactory(owner=user)

    response = logged_in_client(UserFactory(is_staff=True, is_superuser=True)).get(f"/jobs/{job.pk}/")

    assert response.status_code == 404


def test_unknown_job_gets_404(user):
    response = logged_in_client(user).get(f"/jobs/{uuid.uuid4()}/")

    assert response.status_code == 404


def test_waiting_job_page_polls(user):
    job = JobFactory(owner=user, state=JobState.WAITING, progress=0, task="tests.noop")

    response = logged_in_client(user).get(f"/jobs/{job.pk}/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-state="waiting"' in body
    assert '<progress id="job-progress" max="100" value="0" data-progress="0">' in body
    assert "<noscript>" in body
    assert '<a href="">Refresh</a>' in body
    assert page_config(response) == {
        "jobUrl": f"/api/jobs/{job.pk}", "mealUrl": None, "interval": 1000, "polling": True,
    }


def test_completed_meal_job_shows_items(user):
    meal, job = meal_create_for_parsing(owner=user, description="2 eggs and 1 slice of toast")
    run_until_idle("meal-processing")

    response = logged_in_client(user).get(f"/jobs/{job.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-state="completed"' in body
    assert 'value="100"' in body
    assert '<table id="meal-items"' in body
    assert "egg" in body.lower()
    assert page_config(response)["polling"] is False
    assert page_config(response)["mealUrl"] == f"/api/meals/{meal.pk}"


def test_failed_job_shows_reason(user):
    now = timezone.now()
    job = JobFactory(owner=user, task="meals.parse_meal", payload={"meal_id": 999}, state=JobState.FAILED,
                     finished_at=now, dead_lettered_at=now, error_kind="terminal",
                     error="Meal 999 does not exist; it may have been deleted.\nTraceback line")

    response = logged_in_client(user).get(f"/jobs/{job.pk}/")

    body = response.content.decode()
    assert 'data-state="failed"' in body
    assert "failed (will not be retried)" in body
    assert "Meal 999 does not exist; it may have been deleted." in body
    assert "Traceback line" not in body
    assert page_config(response)["polling"] is False


def test_user_text_is_escaped(user):
    job = JobFactory(owner=user, state=JobState.FAILED, error="<script>alert(1)</script>", task="tests.noop")

    body = logged_in_client(user).get(f"/jobs/{job.pk}/").content.decode()

    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_user_logs_in_and_sees_own_job(client):
    from nutricoach.jobs import services
    from tests.factories import UserFactory

    user = UserFactory(email="eater@example.com")
    job = services.enqueue("meals.parse_meal", {"meal_id": 1}, owner=user).job

    response = client.post(
        f"/accounts/login/?next=/jobs/{job.pk}/",
        {"username": "eater@example.com", "password": "correct horse battery staple", "next": f"/jobs/{job.pk}/"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
