"""Post reference meals through the running API, wait for the workers, and score the results.

Every row goes through the same path as a client app's meal: POST /api/meals/parse with
a bearer token, the parse job on the meal-processing queue, then GET /api/jobs/{id} and
GET /api/meals/{id}. The command issues a token for the user and revokes it at the end.
"""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.management.commands.bootstrap_demo import USER_EMAIL
from accounts.models import ApiToken, User
from meals.evaluation import (
    REJECTED,
    UNFINISHED,
    EvaluatedMeal,
    ReferenceFileError,
    format_summary,
    format_table,
    read_reference_csv,
    summarize,
)

DEFAULT_URL = "http://127.0.0.1:8000"
# Seconds between two polls of the jobs that are still running.
POLL_INTERVAL = 0.5
# Seconds one HTTP request may take before the server counts as unreachable.
REQUEST_TIMEOUT = 30
FINISHED_JOB_STATES = ("completed", "failed", "cancelled")


class ApiClient:
    """A minimal JSON client for the NutriCoach API with a bearer token."""

    def __init__(self, base_url, token):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(self, method, path, body=None):
        """Send a request and return (HTTP status, decoded JSON body).

        Raise CommandError when the server cannot be reached or does not return JSON.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CommandError(
                f"Could not reach the API at {self.base_url}: {reason}. Start the server (make run) or pass --url."
            ) from None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise CommandError(
                f"{method} {self.base_url}{path} returned HTTP {status} without JSON; is --url a NutriCoach server?"
            ) from None


def _error_message(body):
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("message") or "no message"
    return str(body)[:200]


class Command(BaseCommand):
    help = (
        "Post every meal of a reference CSV (columns meal_description, carb_g, energy_kcal) to the running "
        "API as a user, wait for the parse jobs, and print the parsed against the reference carbs and "
        "energy with a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", type=Path, help="Reference CSV with the columns meal_description, carb_g, energy_kcal.")
        parser.add_argument(
            "--email", default=USER_EMAIL, help=f"The user the meals are posted as. Default: {USER_EMAIL}."
        )
        parser.add_argument("--url", default=DEFAULT_URL, help=f"Base URL of the running server. Default: {DEFAULT_URL}.")
        parser.add_argument("--limit", type=int, help="Post only the first N meals of the file.")
        parser.add_argument(
            "--timeout",
            type=float,
            default=300.0,
            help="Seconds to wait for the parse jobs after posting; unfinished meals count as misses. Default: 300.",
        )

    def handle(self, *args, csv, email, url, limit, timeout, **options):
        if limit is not None and limit < 1:
            raise CommandError(f"--limit must be 1 or more, got {limit}.")
        if timeout <= 0:
            raise CommandError(f"--timeout must be more than 0 seconds, got {timeout:g}.")
        if not csv.exists():
            raise CommandError(f"{csv} not found; pass the path of a CSV with meal_description, carb_g and energy_kcal.")
        try:
            references = read_reference_csv(csv, limit=limit)
        except ReferenceFileError as exc:
            raise CommandError(str(exc)) from None
        if not references:
            self.stdout.write(f"Skipped: {csv} contains no meal descriptions.")
            return
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(
                f"No user with email {email!r}; run `manage.py bootstrap_demo` (make run does) or pass --email."
            )
        if not user.is_active:
            raise CommandError(f"User {email!r} is inactive; activate it in admin or pass --email.")

        token, raw = ApiToken.issue(user=user, name="evaluate_meals")
        try:
            client = ApiClient(url, raw)
            results = self._post_meals(client, references)
            self._wait_for_jobs(client, results, timeout)
        finally:
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())

        for line in format_table([result for result, _ in results]):
            self.stdout.write(line)
        self.stdout.write("")
        for line in format_summary(summarize([result for result, _ in results])):
            self.stdout.write(line)

    def _post_meals(self, client, references):
        """Post each meal and return (EvaluatedMeal, accepted body or None) pairs."""
        results = []
        for reference in references:
            status, body = client.request("POST", "/api/meals/parse", {"description": reference.description})
            if status == 202:
                results.append((EvaluatedMeal(reference), body))
            elif status in (401, 403):
                raise CommandError(f"The API rejected the token it was given (HTTP {status}): {_error_message(body)}")
            else:
                results.append((EvaluatedMeal(reference, status=REJECTED, error=_error_message(body)), None))
        self.stderr.write(f"Posted {len(results)} meals to {client.base_url}; waiting for the parse jobs.")
        return results

    def _wait_for_jobs(self, client, results, timeout):
        deadline = time.monotonic() + timeout
        pending = [(result, accepted) for result, accepted in results if accepted is not None]
        while pending:
            still_pending = []
            for result, accepted in pending:
                status, job = client.request("GET", accepted["job_url"])
                if status == 200 and job["state"] in FINISHED_JOB_STATES:
                    self._read_meal(client, result, accepted, job)
                else:
                    still_pending.append((result, accepted))
            pending = still_pending
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        for result, _ in pending:
            result.error = f"the parse job did not finish within {timeout:g} s"
        if pending:
            self.stderr.write(f"{len(pending)} parse jobs did not finish within {timeout:g} s; are the workers running?")

    def _read_meal(self, client, result, accepted, job):
        status, meal = client.request("GET", accepted["meal_url"])
        if status != 200:
            result.status = UNFINISHED
            result.error = f"GET {accepted['meal_url']} returned HTTP {status}: {_error_message(meal)}"
            return
        result.status = meal["parse_status"]
        if result.status == "pending":
            result.status = UNFINISHED
            result.error = f"job {job['id']} ended as {job['state']} but the meal is still pending"
        elif result.status == "failed":
            result.error = meal["parse_error"]
        else:
            result.carbs = float(meal["carbs"])
            result.energy = float(meal["calories"])
