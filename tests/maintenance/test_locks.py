import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from maintenance import locks
from maintenance.models import MaintenanceLock


@pytest.mark.django_db
def test_second_acquire_returns_none_while_held():
    first = locks.acquire("maintenance.example", holder="job one")

    second = locks.acquire("maintenance.example", holder="job two")

    assert first is not None
    assert second is None
    assert locks.current("maintenance.example").holder == "job one"


@pytest.mark.django_db
def test_release_frees_lock_for_next_run():
    first = locks.acquire("maintenance.example", holder="job one")

    assert first.release() is True
    second = locks.acquire("maintenance.example", holder="job two")

    assert second is not None
    assert locks.current("maintenance.example").holder == "job two"


@pytest.mark.django_db
def test_expired_lock_is_taken_over(caplog):
    crashed = locks.acquire("maintenance.example", holder="crashed job")
    MaintenanceLock.objects.filter(name="maintenance.example").update(expires_at=timezone.now() - timedelta(seconds=1))

    successor = locks.acquire("maintenance.example", holder="next job")

    assert successor is not None
    assert "lock maintenance.example had expired; next job took it over" in caplog.messages
    assert crashed.release() is False
    assert crashed.renew() is False
    assert crashed.lost is True
    assert locks.current("maintenance.example").holder == "next job"


@pytest.mark.django_db
def test_renew_pushes_expiry_forward(settings):
    settings.MAINTENANCE_LOCK_SECONDS = 60
    lock = locks.acquire("maintenance.example", holder="job one")
    MaintenanceLock.objects.filter(name="maintenance.example").update(expires_at=timezone.now() + timedelta(seconds=5))

    assert lock.renew() is True

    row = locks.current("maintenance.example")
    assert row.expires_at > timezone.now() + timedelta(seconds=55)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", ["none", "expired"])
def test_concurrent_acquires_from_threads_have_one_winner(existing):
    """Each thread uses its own database connection, as separate processes would."""
    rounds = 10
    contenders = 4
    for round_number in range(rounds):
        name = f"maintenance.race-{round_number}"
        if existing == "expired":
            expired_at = timezone.now() - timedelta(seconds=1)
            MaintenanceLock.objects.create(
                name=name, token="crashed", holder="crashed job", acquired_at=expired_at, expires_at=expired_at
            )
        barrier = threading.Barrier(contenders)
        winners = []

        def contend(index):
            try:
                barrier.wait()
                if locks.acquire(name, holder=f"thread {index}") is not None:
                    winners.append(index)
            finally:
                connection.close()

        threads = [threading.Thread(target=contend, args=(index,)) for index in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(winners) == 1, f"round {round_number}: winners {winners}"
