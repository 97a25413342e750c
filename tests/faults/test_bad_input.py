"""Bad input through every entry point: a clear error naming the value, and nothing written.

Covers the management commands, the admin forms and the API's authentication.
"""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule

from accounts.models import ApiToken, User
from meals.models import FoodItem, Meal
from summaries.models import Goal
from tests.factories import GoalFactory, MealFactory, UserFactory

pytestmark = pytest.mark.django_db


def run_command(*args, **options):
    """Run a management command and return (stdout, stderr)."""
    stdout, stderr = StringIO(), StringIO()
    call_command(*args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


# create_api_token

def test_create_api_token_unknown_email():
    with pytest.raises(CommandError) as caught:
        run_command("create_api_token", "nobody@example.com")

    assert str(caught.value) == (
        "No user with email 'nobody@example.com'; create the user first (manage.py createsuperuser)."
    )
    assert not ApiToken.objects.exists()


def test_create_api_token_inactive_user():
    UserFactory(email="gone@example.com", is_active=False)

    with pytest.raises(CommandError) as caught:
        run_command("create_api_token", "gone@example.com")

    assert "User 'gone@example.com' is inactive; activate it in admin" in str(caught.value)
    assert not ApiToken.objects.exists()


def test_create_api_token_name_too_long():
    UserFactory(email="someone@example.com")

    with pytest.raises(CommandError) as caught:
        run_command("create_api_token", "someone@example.com", name="n" * 101)

    assert str(caught.value) == "--name is 101 characters long; the maximum is 100. Pass a shorter --name."
    assert not ApiToken.objects.exists()


# evaluate_meals

@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "--limit must be 1 or more, got 0."),
        ({"timeout": -1.0}, "--timeout must be more than 0 seconds, got -1."),
        ({"email": "nobody@example.com"}, "No user with email 'nobody@example.com'; run `manage.py bootstrap_demo`"),
    ],
    ids=["limit", "timeout", "email"],
)
def test_evaluate_meals_rejects_bad_option(tmp_path, options, message):
    csv = tmp_path / "meals.csv"
    csv.write_text("meal_description,carb_g,energy_kcal\n2 eggs,1.2,143\n")

    with pytest.raises(CommandError) as caught:
        run_command("evaluate_meals", str(csv), **options)

    assert str(caught.value).startswith(message)
    assert not ApiToken.objects.exists()
    assert not Meal.objects.exists()


def test_evaluate_meals_rejects_bad_csv(tmp_path):
    UserFactory(email="demo@nutricoach.localhost")
    csv = tmp_path / "meals.csv"
    csv.write_text("meal,carbs\n2 eggs,1.2\n")

    with pytest.raises(CommandError) as caught:
        run_command("evaluate_meals", str(csv))

    assert "meal_description" in str(caught.value)
    assert not ApiToken.objects.exists()
    assert not Meal.objects.exists()


# register_schedules

@pytest.mark.parametrize(
    ("declarations", "message"),
    [
        ("BAD_CRON", "Schedules not registered: Periodic job 'typo' has an invalid cron expression '61 * * * *'."),
        ("UNKNOWN_QUEUE", "Schedules not registered: Periodic job 'lost' names unknown queue 'emails'."),
        ("UNKNOWN_TASK", "Schedules not registered: No job handler is registered as 'jobs.does_not_exist'"),
    ],
    ids=["cron", "queue", "task"],
)
def test_register_schedules_rejects_bad_declaration(settings, declarations, message):
    settings.PERIODIC_JOBS = f"tests.faults.bad_schedules.{declarations}"

    with pytest.raises(CommandError) as caught:
        run_command("register_schedules")

    assert str(caught.value).startswith(message)
    assert not Schedule.objects.exists()


# maintenance commands

def test_clean_temp_files_rejects_file_as_folder(settings, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    settings.MAINTENANCE_TEMP_DIR = not_a_folder

    with pytest.raises(CommandError) as caught:
        run_command("clean_temp_files")

    assert f"MAINTENANCE_TEMP_DIR {str(not_a_folder)!r}" in str(caught.value)
    assert not_a_folder.exists()


@pytest.mark.parametrize("command", ["archive_old_meals", "prune_job_history", "clear_expired_sessions"])
def test_maintenance_command_rejects_unknown_option(command):
    with pytest.raises(CommandError) as caught:
        run_command(command, "--days", "3")

    assert "unrecognized arguments: --days 3" in str(caught.value)


# run_dispatcher

@pytest.mark.parametrize("interval", ["-1", "0"])
def test_run_dispatcher_rejects_non_positive_interval(interval):
    with pytest.raises(SystemExit) as caught:
        run_command("run_dispatcher", "--interval", interval)

    assert caught.value.code == 2


def test_run_dispatcher_names_bad_interval():
    stderr = StringIO()
    with pytest.raises(SystemExit):
        call_command("run_dispatcher", "--interval", "-1", stderr=stderr)

    assert stderr.getvalue().strip() == "--interval must be positive, got -1.0."


def test_run_dispatcher_rejects_text_interval():
    with pytest.raises(CommandError) as caught:
        run_command("run_dispatcher", "--interval", "soon")

    assert "argument --interval: invalid float value: 'soon'" in str(caught.value)


# bootstrap_demo

def test_bootstrap_demo_rejects_corrupt_credentials_file(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / "demo-credentials.json").write_text("{not json")

    with pytest.raises(CommandError) as caught:
        run_command("bootstrap_demo")

    assert str(tmp_path / "demo-credentials.json") in str(caught.value)
    assert "delete it" in str(caught.value)
    assert not User.objects.exists()
    assert not ApiToken.objects.exists()


# admin forms

@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser("staff@example.com", "staff-password")
    client.force_login(staff)
    return client


def test_admin_user_add_rejects_bad_time_zone(staff_client):
    response = staff_client.post("/admin/accounts/user/add/", {
        "email": "new@example.com", "time_zone": "Mars/Olympus", "password1": "A-long-enough-pass-1",
        "password2": "A-long-enough-pass-1",
    })

    assert response.status_code == 200
    assert "Mars/Olympus is not an IANA time zone name; use one such as Europe/Berlin." in response.text
    assert not User.objects.filter(email="new@example.com").exists()


def test_admin_user_change_rejects_bad_time_zone(staff_client):
    user = UserFactory(time_zone="UTC")
    form = {
        "email": user.email, "full_name": "", "time_zone": "Europe/Nowhere", "energy_unit": "kcal",
        "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
    }

    response = staff_client.post(f"/admin/accounts/user/{user.pk}/change/", form)

    assert response.status_code == 200
    assert "Europe/Nowhere is not an IANA time zone name" in response.text
    user.refresh_from_db()
    assert user.time_zone == "UTC"


@pytest.mark.parametrize(
    ("field", "value"), [("calories", "-100"), ("calories", "0"), ("protein", "-1"), ("fat", "abc")],
)
def test_admin_goal_rejects_bad_number(staff_client, field, value):
    owner = UserFactory()
    form = {"user": owner.pk, "calories": "2000", "protein": "100", "carbs": "250", "fat": "70", field: value}

    response = staff_client.post("/admin/summaries/goal/add/", form)

    assert response.status_code == 200
    assert "errornote" in response.text
    assert not Goal.objects.exists()


def test_admin_goal_rejects_second_active_goal(staff_client):
    goal = GoalFactory(is_active=True)
    form = {"user": goal.user.pk, "calories": "1800", "protein": "90", "carbs": "200", "fat": "60", "is_active": "on"}

    response = staff_client.post("/admin/summaries/goal/add/", form)

    assert response.status_code == 200
    assert "errornote" in response.text
    assert Goal.objects.count() == 1


def test_admin_food_item_rejects_zero_quantity(staff_client):
    meal = MealFactory()
    form = {
        "meal": meal.pk, "position": "0", "name": "egg", "quantity": "0", "unit": "count", "grams": "50",
        "calories": "70", "protein": "6", "carbs": "0.5", "fat": "5", "fiber": "0", "source": "",
    }

    response = staff_client.post("/admin/meals/fooditem/add/", form)

    assert response.status_code == 200
    assert "errornote" in response.text
    assert not FoodItem.objects.exists()
    meal.refresh_from_db()
    assert meal.calories == Decimal("250.00")
