"""Fixtures for the fault-injection tests: worker processes and private servers."""

import pytest

import tests.jobtasks  # noqa: F401  (registers the test handlers)
from tests.processes import PrivatePostgreSQL


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
