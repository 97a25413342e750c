import pytest
from django.contrib.auth.models import Permission
from django.test import Client

import tests.jobtasks  # noqa: F401  (registers the test handlers)
from tests.factories import UserFactory

VIEW_PERMISSIONS = ["view_job", "view_jobattempt", "view_joblog", "view_queuestate"]


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames))
    # Django caches permissions on the user instance, so load the user again.
    return type(user).objects.get(pk=user.pk)


def logged_in_client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, email="root@example.com")


@pytest.fixture
def staff_viewer(db):
    """A staff member who may look at jobs and queues but change nothing."""
    return grant(UserFactory(is_staff=True, email="viewer@example.com"), *VIEW_PERMISSIONS)


@pytest.fixture
def staff_operator(db):
    """A staff member who may retry, replay, cancel and discard jobs, but not pause queues."""
    return grant(UserFactory(is_staff=True, email="operator@example.com"), *VIEW_PERMISSIONS, "change_job")


@pytest.fixture
def plain_user(db):
    return UserFactory(email="plain@example.com")
