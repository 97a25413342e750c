"""`manage.py evaluate_meals` against a live server, with jobs run by a background runner or a real cluster."""

import csv
import io
import socket
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import ApiToken
from meals.evaluation import EvaluatedMeal, ReferenceMeal, summarize
from meals.models import Meal
from nutricoach.jobs.runner import run_until_idle
from tests.factories import UserFactory
from tests.processes import start_cluster

ROWS = [
    {"meal_description": "2 eggs and a slice of toast", "carb_g": "12", "energy_kcal": "200"},
    {"meal_description": "a cup of cooked white rice", "carb_g": "80", "energy_kcal": "210"},
    {"meal_description": "went for a long walk", "carb_g": "0", "energy_kcal": "0"},
]


def write_csv(path, rows, fieldnames=("source", "meal_description", "carb_g", "protein_g", "fat_g", "energy_kcal")):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("evaluate_meals", *[str(arg) for arg in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def job_runner(transactional_db):
    """Run meal-processing jobs in a background thread, as a worker would."""
    stop = threading.Event()

    def loop():
        try:
            while not stop.is_set():
                if not run_until_idle("meal-processing"):
                    stop.wait(0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="meal-job-runner", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def evaluator(transactional_db, settings):
    settings.OPENAI_API_KEY = ""
    return UserFactory(email="evaluator@example.com")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_evaluate_meals_reports_table_and_summary(evaluator, live_server, job_runner, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS)

    out, err = run_command(path, "--url", live_server.url, "--email", evaluator.email, "--timeout", 60)

    lines = out.splitlines()
    assert lines[0].split() == ["row", "description", "carbs", "ref", "carbs", "kcal", "ref", "kcal", "status"]
    assert lines[2].startswith("   2  2 eggs and a slice of toast")
    assert lines[2].endswith("parsed")
    assert lines[3].startswith("   3  a cup of cooked white rice")
    assert "failed: no food items found in description" in lines[4]
    assert "meals: 3 (parsed 2, needs review 0, failed 1, rejected by the API 0, unfinished 0)" in lines
    assert any(line.startswith("mean absolute error over the 2 meals with totals: carbs ") for line in lines)
    assert any(line.startswith("within 7.5 g of the reference carbs: ") for line in lines)
    assert any(line.startswith("within 20% of the reference energy: ") for line in lines)
    assert "Posted 3 meals to" in err
    assert Meal.objects.filter(owner=evaluator).count() == 3
    assert set(Meal.objects.values_list("parse_status", flat=True)) == {"parsed", "failed"}
    token = ApiToken.objects.get(user=evaluator)
    assert token.name == "evaluate_meals"
    assert token.revoked_at is not None


@pytest.mark.django_db(transaction=True)
def test_evaluate_meals_limit_posts_first_rows(evaluator, live_server, job_runner, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS)

    out, _ = run_command(path, "--url", live_server.url, "--email", evaluator.email, "--limit", 1)

    assert "meals: 1 (parsed 1, needs review 0, failed 0, rejected by the API 0, unfinished 0)" in out
    assert list(Meal.objects.values_list("description", flat=True)) == ["2 eggs and a slice of toast"]


@pytest.mark.django_db(transaction=True)
def test_evaluate_meals_counts_rejected_description(evaluator, live_server, job_runner, tmp_path):
    path = write_csv(tmp_path / "meals.csv", [{"meal_description": "x" * 2001, "carb_g": "1", "energy_kcal": "1"}])

    out, _ = run_command(path, "--url", live_server.url, "--email", evaluator.email)

    assert "rejected: Invalid input: description:" in out
    assert "meals: 1 (parsed 0, needs review 0, failed 0, rejected by the API 1, unfinished 0)" in out
    assert not Meal.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_evaluate_meals_timeout_marks_unfinished(evaluator, live_server, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS[:1])

    out, err = run_command(path, "--url", live_server.url, "--email", evaluator.email, "--timeout", 0.5)

    assert "unfinished: the parse job did not finish within 0.5 s" in out
    assert "meals: 1 (parsed 0, needs review 0, failed 0, rejected by the API 0, unfinished 1)" in out
    assert "within 7.5 g of the reference carbs: 0/1 (0.0%)" in out
    assert "1 parse jobs did not finish within 0.5 s; are the workers running?" in err


def test_evaluate_meals_rejects_absent_file(evaluator, tmp_path):
    with pytest.raises(CommandError, match="absent.csv not found; pass the path of a CSV"):
        run_command(tmp_path / "absent.csv")

    assert not ApiToken.objects.exists()


def test_evaluate_meals_rejects_missing_columns(evaluator, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS, fieldnames=("meal_description", "carb_g"))

    with pytest.raises(CommandError, match="has no column energy_kcal; the header must contain"):
        run_command(path, "--email", evaluator.email)

    assert not ApiToken.objects.exists()


def test_evaluate_meals_rejects_bad_number(evaluator, tmp_path):
    path = write_csv(tmp_path / "meals.csv", [{"meal_description": "rice", "carb_g": "lots", "energy_kcal": "1"}])

    with pytest.raises(CommandError, match="row 2: carb_g is 'lots', not a number"):
        run_command(path, "--email", evaluator.email)


def test_evaluate_meals_rejects_unknown_user(evaluator, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS)

    with pytest.raises(CommandError, match="No user with email 'nobody@example.com'; run `manage.py bootstrap_demo`"):
        run_command(path, "--email", "nobody@example.com")


def test_evaluate_meals_reports_unreachable_server(evaluator, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS)
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(CommandError, match=f"Could not reach the API at {url}: .*Start the server"):
        run_command(path, "--email", evaluator.email, "--url", url)

    assert ApiToken.objects.get(user=evaluator).revoked_at is not None
    assert not Meal.objects.exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--limit", 0, "--limit must be 1 or more, got 0."),
    ("--timeout", 0, "--timeout must be more than 0 seconds, got 0."),
])
def test_evaluate_meals_rejects_bad_options(evaluator, tmp_path, option, value, message):
    with pytest.raises(CommandError, match=message):
        run_command(tmp_path / "meals.csv", option, value)


def test_summary_counts_failures_as_misses():
    references = [ReferenceMeal(row, "meal", carbs=50.0, energy=500.0) for row in range(2, 6)]
    results = [
        EvaluatedMeal(references[0], status="parsed", carbs=55.0, energy=590.0),
        EvaluatedMeal(references[1], status="needs_review", carbs=40.0, energy=620.0),
        EvaluatedMeal(references[2], status="failed", error="no food items found"),
        EvaluatedMeal(references[3]),
    ]

    summary = summarize(results)

    assert summary.total == 4
    assert summary.counts == {"parsed": 1, "needs_review": 1, "failed": 1, "unfinished": 1}
    assert summary.with_totals == 2
    assert summary.carbs_mae == 7.5
    assert summary.energy_mae == 105.0
    assert summary.carbs_close == 1
    assert summary.energy_close == 1


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_evaluate_meals_with_real_cluster(evaluator, live_server, tmp_path):
    path = write_csv(tmp_path / "meals.csv", ROWS[:2])
    cluster = start_cluster("meal-processing", tmp_path, MEAL_PROCESSING_WORKERS=2)
    try:
        out, _ = run_command(path, "--url", live_server.url, "--email", evaluator.email, "--timeout", 60)
    finally:
        cluster.terminate()
        cluster_output = cluster.output()

    assert "meals: 2 (parsed 2, needs review 0, failed 0, rejected by the API 0, unfinished 0)" in out, cluster_output
    assert Meal.objects.filter(parse_status="parsed").count() == 2
