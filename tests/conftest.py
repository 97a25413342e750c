import shutil

import pytest
from django.test import Client

from nutricoach.jobs import runner
from tests.factories import ApiTokenFactory, UserFactory
from tests.processes import PrivateRedis

pytest_plugins = ["tests.fakes.openai_server"]


@pytest.fixture
def user(db):
    return UserFactory(time_zone="Europe/Berlin")


@pytest.fixture
def token(user):
    return ApiTokenFactory(user=user)


@pytest.fixture
def api_client(token):
    """A test client that sends the user's bearer token with every request."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {token.raw}")


@pytest.fixture
def other_client(db):
    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory().raw}")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2 at production strength would dominate the run time of factory-built users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_batch_estimates():
    # Batch sizes follow the job durations this process has seen; each test starts
    # without any, as a new worker does.
    runner._durations.clear()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test failed, to print worker logs only then.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def processes(request):
    """Collect started processes and kill each one after the test.

    When the test fails, the end of every process log is printed.
    """
    started = []
    yield started
    for process in started:
        process.kill()
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        for process in started:
            print(f"----- {process.log_path.name} -----\n{process.output()[-5000:]}")


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own on a free loopback port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
