"""Named locks that keep two runs of one maintenance task from overlapping.

A lock is a row of MaintenanceLock, so it works the same across processes and hosts on
SQLite and PostgreSQL. Taking it is one conditional UPDATE of an expired row or one
INSERT of a missing row. The primary key makes the INSERT fail for every contender but
one. PostgreSQL re-checks the UPDATE's condition after waiting for the row lock, and
SQLite runs one writer at a time, so two runs never both take an expired lock.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from maintenance.models import MaintenanceLock

logger = logging.getLogger(__name__)


@dataclass
class Lock:
    """One acquisition of a named lock; renew it while working and release it when done."""

    name: str
    token: str
    holder: str
    expires_at: object
    lost: bool = False

    def renew(self):
        """Push the expiry forward; return False (and mark the lock lost) if another run took it."""
        expires_at = timezone.now() + lock_duration()
        renewed = MaintenanceLock.objects.filter(name=self.name, token=self.token).update(expires_at=expires_at)
        if renewed:
            self.expires_at = expires_at
        else:
            self.lost = True
            logger.warning("lock %s of %s expired and was taken over", self.name, self.holder)
        return bool(renewed)

    def release(self):
        """Delete the lock row if this acquisition still holds it; return whether it did."""
        released, _ = MaintenanceLock.objects.filter(name=self.name, token=self.token).delete()
        return bool(released)


def lock_duration():
    return timedelta(seconds=settings.MAINTENANCE_LOCK_SECONDS)


def acquire(name, *, holder):
    """Take lock `name` for `holder` (a description for operators); return a Lock, or None if it is held."""
    now = timezone.now()
    token = secrets.token_hex(16)
    fields = {"token": token, "holder": holder[:200], "acquired_at": now, "expires_at": now + lock_duration()}

    taken_over = MaintenanceLock.objects.filter(name=name, expires_at__lte=now).update(**fields)
    if taken_over:
        logger.warning("lock %s had expired; %s took it over", name, holder)
    else:
        try:
            with transaction.atomic():
                MaintenanceLock.objects.create(name=name, **fields)
        except IntegrityError:
            return None
    return Lock(name=name, token=token, holder=fields["holder"], expires_at=fields["expires_at"])


def current(name):
    """Return the MaintenanceLock row of `name`, or None when the lock is free."""
    return MaintenanceLock.objects.filter(name=name).first()
