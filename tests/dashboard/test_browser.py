"""The job status page and the queue overview in headless Chromium, with a real worker.

A Django-Q2 cluster for the meal-processing queue runs as a subprocess against the
test database, the pages come from pytest-django's live server, and Playwright drives
Debian's Chromium. Screenshots go to test-output/dashboard/ in the repository root.
"""

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import Client

import tests.dashboard.slow_tasks  # noqa: F401  (registers dashboard.slow_steps here too)
from meals.models import Meal
from nutricoach.jobs import clusters, services
from nutricoach.jobs.models import Job, JobState
from tests.factories import ApiTokenFactory, UserFactory
from tests.processes import ROOT, start_cluster, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "test-output" / "dashboard"
QUEUE = "meal-processing"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.workers,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium not installed at {CHROMIUM} "
                       "(apt-get install chromium chromium-driver)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture
def browser(server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread, which trips Django's
    # check against synchronous ORM calls from async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Under sync_playwright() the test body runs with context variables of its own,
        # so Django opened a second connection there. Close it, or the test database
        # cannot be dropped at the end of the session.
        connections.close_all()


@pytest.fixture
def meal_cluster(server, tmp_path, request):
    """A real qcluster for the meal-processing queue; its log is printed if the test fails."""
    cluster = start_cluster(
        QUEUE, tmp_path, JOB_EXTRA_TASK_MODULES="tests.jobtasks,tests.dashboard.slow_tasks",
        MEAL_PROCESSING_WORKERS=2,
    )
    yield cluster
    cluster.terminate()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(cluster.output())


def wait_for_other_sessions_to_end(timeout=10):
    """Wait until PostgreSQL has ended the sessions of workers and live-server threads.

    Each ends a moment after its process stops or its browser connection closes, and
    the test database cannot be dropped while one remains.
    """
    if connection.vendor != "postgresql":
        return

    def others():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    wait_for(lambda: others() == 0, timeout=timeout, message="other database sessions to end")


@pytest.fixture
def server(transactional_db, live_server):
    """The live server; on teardown, after the browser and the cluster stop, wait for their sessions."""
    yield live_server
    wait_for_other_sessions_to_end()


@pytest.fixture
def owner(transactional_db):
    return UserFactory(email="owner@example.com")


def open_as(browser, server, user, path):
    """Open `path` in a new browser context logged in as `user` through a session cookie."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server.url}])
    page = context.new_page()
    page.goto(server.url + path)
    return page


def submit_meal(server, user, description):
    """POST a meal to the API with a bearer token, as a client app would; return the body."""
    token = ApiTokenFactory(user=user)
    request = urllib.request.Request(
        server.url + "/api/meals/parse",
        data=json.dumps({"description": description}).encode(),
        headers={"Authorization": f"Bearer {token.raw}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return json.loads(response.read())


def watch_progress(page, *, until_states, timeout=60):
    """Read the page's state and progress every 50 ms until the state is final; return both."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # One evaluation reads both, so an update cannot land between the two reads.
        state, progress = page.evaluate(
            "() => [document.getElementById('job-state').dataset.state,"
            " Number(document.getElementById('job-progress').dataset.progress)]"
        )
        if not seen or seen[-1] != progress:
            seen.append(progress)
        if state in until_states:
            return state, seen
        time.sleep(0.05)
    raise AssertionError(f"page still in state {state} after {timeout}s; progress seen {seen}")


def test_meal_page_follows_parse(browser, server, meal_cluster, owner):
    services.set_paused(QUEUE, True)
    accepted = submit_meal(server, owner, "2 eggs, 1 slice of toast and a banana")

    page = open_as(browser, server, owner, f"/jobs/{accepted['job_id']}/")
    assert page.get_attribute("#job-state", "data-state") == "waiting"
    page.screenshot(path=SCREENSHOTS / "meal-waiting.png", full_page=True)
    services.set_paused(QUEUE, False)
    state, seen = watch_progress(page, until_states=["completed", "failed"])

    assert state == "completed"
    assert seen[0] == 0
    assert seen[-1] == 100
    assert seen == sorted(seen)
    page.wait_for_selector("#meal-items tbody tr")
    foods = page.locator("#meal-items tbody tr td:first-child").all_text_contents()
    assert len(foods) == 3
    assert any("egg" in food.lower() for food in foods)
    assert any("banana" in food.lower() for food in foods)
    assert page.locator("#job-failure").is_hidden()
    assert "3 items" in page.text_content("#meal-summary")
    page.screenshot(path=SCREENSHOTS / "meal-completed.png", full_page=True)
    assert Meal.objects.get(pk=accepted["meal_id"]).items.count() == 3


def test_page_shows_each_progress_step(browser, server, meal_cluster, owner):
    services.set_paused(QUEUE, True)
    job = services.enqueue("dashboard.slow_steps", {"steps": 4}, owner=owner).job

    page = open_as(browser, server, owner, f"/jobs/{job.id}/")
    services.set_paused(QUEUE, False)
    page.wait_for_function("Number(document.getElementById('job-progress').dataset.progress) >= 40", timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "steps-running.png", full_page=True)
    state, seen = watch_progress(page, until_states=["completed", "failed"])

    assert state == "completed"
    assert seen == sorted(seen)
    assert len(set(seen) - {0, 100}) >= 2
    assert seen[-1] == 100
    assert page.locator("#job-result-json").text_content().replace(" ", "").replace("\n", "") == '{"steps":4}'
    assert "step 4 of 4 done" in page.text_content("#job-log")


def test_page_shows_failure_reason(browser, server, meal_cluster, owner):
    services.set_paused(QUEUE, True)
    accepted = submit_meal(server, owner, "a bowl of porridge")
    Meal.objects.filter(pk=accepted["meal_id"]).delete()

    page = open_as(browser, server, owner, f"/jobs/{accepted['job_id']}/")
    services.set_paused(QUEUE, False)
    state, _ = watch_progress(page, until_states=["completed", "failed"])

    assert state == "failed"
    page.wait_for_selector("#job-failure:not([hidden])")
    reason = page.text_content("#job-failure-reason")
    assert reason == f"Meal {accepted['meal_id']} does not exist; it may have been deleted."
    assert page.text_content("#job-state") == "failed (will not be retried)"
    assert page.locator("#job-result").is_hidden()
    page.screenshot(path=SCREENSHOTS / "meal-failed.png", full_page=True)
    job = Job.objects.get(pk=accepted["job_id"])
    assert job.state == JobState.FAILED
    assert job.error_kind == "terminal"


def test_page_without_javascript_offers_refresh(browser, server, owner):
    job = services.enqueue("tests.noop", {}, owner=owner).job
    client = Client()
    client.force_login(owner)
    context = browser.new_context(java_script_enabled=False)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server.url}])
    page = context.new_page()

    page.goto(f"{server.url}/jobs/{job.id}/")

    assert page.get_attribute("#job-state", "data-state") == "waiting"
    assert page.get_by_role("link", name="Refresh").is_visible()
    page.screenshot(path=SCREENSHOTS / "no-javascript.png", full_page=True)


def test_overview_shows_running_cluster(browser, server, meal_cluster, owner):
    staff = UserFactory(is_staff=True, is_superuser=True, email="staff@example.com")
    job = services.enqueue("tests.limited", {"directory": str(meal_cluster.log_path.parent)}).job
    wait_for(lambda: Job.objects.get(pk=job.pk).state == JobState.COMPLETED, timeout=60, message="job to complete")
    statuses = wait_for(clusters.cluster_statuses, timeout=30, message="cluster status in the cache")

    page = open_as(browser, server, staff, "/admin/jobs/queueoverview/")

    # Clusters of earlier tests may still be listed while their status entries expire.
    assert (QUEUE, 2) in [(status.queue, status.workers) for status in statuses]

    def cluster_listed():
        # Django-Q2 publishes a cluster's status with a 3 s expiry, so on a loaded
        # machine it can be missing for a moment between two refreshes.
        if page.locator("#cluster-table tbody tr", has_text=QUEUE).count() == 1:
            return True
        page.reload()
        return False

    wait_for(cluster_listed, timeout=20, interval=0.5, message="the cluster's row on the overview")
    assert "workers online" in page.text_content("h2:has-text('Django-Q2 clusters')")
    assert page.locator("svg.throughput-chart").count() == 2
    assert page.locator("svg.throughput-chart rect").count() >= 1
    page.screenshot(path=SCREENSHOTS / "overview.png", full_page=True)


@pytest.fixture(scope="module", autouse=True)
def fresh_screenshot_folder():
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
