import pytest

from notifications.services import notification_enqueue, notifications_enqueue_many
from nutricoach.jobs.models import Job
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_bulk_enqueue_matches_single_enqueue():
    user = UserFactory()

    created = notifications_enqueue_many(
        kind="goal_alert", items=[(user.pk, "2026-11-10", {"local_date": "2026-11-10"})]
    )
    single = notification_enqueue(
        user_id=user.pk, kind="goal_alert", period_key="2026-11-10", data={"local_date": "2026-11-10"}
    )

    assert created == 1
    assert single.created is False
    bulk_job = Job.objects.get()
    assert single.job.pk == bulk_job.pk
    assert bulk_job.queue == "notifications"
    assert bulk_job.task == "notifications.send"
    assert bulk_job.payload == {
        "user_id": user.pk, "kind": "goal_alert", "period_key": "2026-11-10", "data": {"local_date": "2026-11-10"},
    }


def test_bulk_enqueue_skips_existing_keys():
    user = UserFactory()
    notification_enqueue(user_id=user.pk, kind="goal_reminder", period_key="2026-11-10", data={})

    created = notifications_enqueue_many(
        kind="goal_reminder", items=[(user.pk, "2026-11-10", {}), (user.pk, "2026-11-11", {})]
    )

    assert created == 1
    assert sorted(Job.objects.values_list("payload__period_key", flat=True)) == ["2026-11-10", "2026-11-11"]


def test_bulk_enqueue_of_nothing_writes_nothing():
    assert notifications_enqueue_many(kind="goal_alert", items=[]) == 0
    assert not Job.objects.exists()
