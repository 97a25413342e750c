import subprocess
import sys
from copy import deepcopy

from django.conf import settings

from nutricoach.jobs.checks import check_job_queues
from tests.processes import ROOT


def check_ids(settings_fixture):
    # The fixture argument only ties the call to the test's overridden settings.
    return [message.id for message in check_job_queues(None)]


def test_default_settings_pass(settings):
    assert check_ids(settings) == []


def test_queue_without_cluster_fails(settings):
    clusters = deepcopy(settings.Q_CLUSTER)
    del clusters["ALT_CLUSTERS"]["notifications"]
    settings.Q_CLUSTER = clusters

    messages = check_job_queues(None)

    assert [message.id for message in messages] == ["jobs.E001"]
    assert "Queue 'notifications' has no Django-Q2 cluster" in messages[0].msg


def test_retry_not_above_timeout_and_queue_wait_fails(settings):
    clusters = deepcopy(settings.Q_CLUSTER)
    clusters["ALT_CLUSTERS"]["maintenance"]["retry"] = clusters["ALT_CLUSTERS"]["maintenance"]["timeout"]
    settings.Q_CLUSTER = clusters

    messages = check_job_queues(None)

    assert [message.id for message in messages] == ["jobs.E002"]
    assert "Cluster 'maintenance' has retry=" in messages[0].msg


def test_rate_limit_with_zero_window_fails(settings):
    queues = deepcopy(settings.JOB_QUEUES)
    queues["meal-processing"]["rate_window"] = 0
    settings.JOB_QUEUES = queues

    assert check_ids(settings) == ["jobs.E003"]


def test_two_schedulers_fail(settings):
    clusters = deepcopy(settings.Q_CLUSTER)
    clusters["ALT_CLUSTERS"]["notifications"]["scheduler"] = True
    settings.Q_CLUSTER = clusters

    messages = check_job_queues(None)

    assert [message.id for message in messages] == ["jobs.E004"]
    assert "2 clusters run the Django-Q2 scheduler" in messages[0].msg


def test_deploy_check_passes_with_production_settings(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "NUTRICOACH_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "k3Jp9vQ2mX7rT4wZ8bN1cF6hL0sD5gY2uE9aR3tV7yB4nM8qWx6",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "nutricoach.example.com",
        "EMAIL_URL": "smtp+tls://user:password@smtp.example.com:587",
        "SESSION_COOKIE_SECURE": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
    }
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/nutricoach"

    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )

    assert result.returncode == 0, result.stderr
