"""Fixtures for the fault-injection tests: worker processes and private servers."""

import shutil

import pytest

import tests.jobtasks  # noqa: F401  (registers the test handlers)
from tests.processes import PrivatePostgreSQL, PrivateRedis


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
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres():
    missing = PrivatePostgreSQL.missing_requirement()
    if missing:
        pytest.skip(missing)
    server = PrivatePostgreSQL()
    try:
        server.initialise()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def local_parser(settings):
    settings.OPENAI_API_KEY = ""
    settings.JOB_RATE_LIMIT_LOCAL_PARSER = False
