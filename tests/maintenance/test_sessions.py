from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from django.contrib.sessions.models import Session

from maintenance.services import sessions_clear_expired

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


def session_expiring_at(moment, key):
    return Session.objects.create(session_key=key, session_data="e30:", expire_date=moment)


@pytest.mark.parametrize(
    ("expire_date", "deleted"),
    [
        (NOW - timedelta(seconds=1), True),
        (NOW, False),
        (NOW + timedelta(seconds=1), False),
    ],
    ids=["one-second-before-now", "exactly-now", "one-second-after-now"],
)
def test_session_expiry_at_boundary(expire_date, deleted):
    session_expiring_at(expire_date, "boundarysessionkey0000000000000")

    outcome = sessions_clear_expired(now=NOW)

    assert Session.objects.filter(session_key="boundarysessionkey0000000000000").exists() is not deleted
    assert outcome.counts == {"sessions": 1 if deleted else 0}


def test_db_sessions_deleted_in_batches_with_more():
    for n in range(5):
        session_expiring_at(NOW - timedelta(days=1), f"expiredsession{n:018d}")
    session_expiring_at(NOW + timedelta(days=1), "livesession00000000000000000000")

    first = sessions_clear_expired(now=NOW, batch_size=2, max_batches=2)
    second = sessions_clear_expired(now=NOW, batch_size=2, max_batches=2)

    assert first.counts == {"sessions": 4}
    assert first.more is True
    assert second.counts == {"sessions": 1}
    assert second.more is False
    assert list(Session.objects.values_list("session_key", flat=True)) == ["livesession00000000000000000000"]


def test_heartbeat_false_stops_after_batch():
    for n in range(5):
        session_expiring_at(NOW - timedelta(days=1), f"expiredsession{n:018d}")

    outcome = sessions_clear_expired(now=NOW, batch_size=2, max_batches=10, heartbeat=lambda: False)

    assert outcome.counts == {"sessions": 2}
    assert outcome.more is True
    assert Session.objects.count() == 3


def test_dry_run_counts_and_deletes_nothing():
    for n in range(3):
        session_expiring_at(NOW - timedelta(days=1), f"expiredsession{n:018d}")

    outcome = sessions_clear_expired(now=NOW, dry_run=True, batch_size=1, max_batches=1)

    assert outcome.counts == {"sessions": 3}
    assert outcome.message == "would delete 3 sessions that expired before 2026-12-04T03:00:00+00:00"
    assert Session.objects.count() == 3


def test_cached_db_engine_cleared_in_batches(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    session_expiring_at(NOW - timedelta(days=1), "expiredsession000000000000000000")

    outcome = sessions_clear_expired(now=NOW)

    assert outcome.counts == {"sessions": 1}
    assert Session.objects.count() == 0


def test_file_engine_uses_clear_expired(settings, tmp_path):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.file"
    settings.SESSION_FILE_PATH = str(tmp_path)
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    expired = store_class()
    expired["user"] = 1
    expired.set_expiry(datetime(2020, 1, 1, tzinfo=UTC))
    expired.save()
    live = store_class()
    live["user"] = 2
    live.set_expiry(3600)
    live.save()

    dry = sessions_clear_expired(dry_run=True)
    files_after_dry_run = len(list(tmp_path.iterdir()))
    outcome = sessions_clear_expired()

    assert dry.notes == ["django.contrib.sessions.backends.file reports no count; a run calls its SessionStore.clear_expired()"]
    assert files_after_dry_run == 2
    assert outcome.message == "cleared expired sessions with django.contrib.sessions.backends.file"
    assert [path.name for path in tmp_path.iterdir()] == [settings.SESSION_COOKIE_NAME + live.session_key]


def test_cache_engine_has_nothing_to_clear(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"

    outcome = sessions_clear_expired(now=NOW)

    assert outcome.counts == {}
    assert outcome.message == "cleared expired sessions with django.contrib.sessions.backends.cache"
