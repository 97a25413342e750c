import pytest
from django.test import Client

from tests.factories import ApiTokenFactory, UserFactory

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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test failed, to print worker logs only then.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
