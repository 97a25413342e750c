"""Reads on notifications: who receives operations alerts."""

import logging

from django.conf import settings
from django.db.models import Q

from accounts.models import User

logger = logging.getLogger(__name__)


def _listed_addresses():
    return {address.strip().lower() for address in settings.STAFF_ALERT_EMAILS if address.strip()}


def operations_alert_recipients():
    """Return the active users who get operations alerts and have them on.

    They are the staff users plus the accounts whose address is in
    settings.STAFF_ALERT_EMAILS. The log keys every notification by user, so a listed
    address without an account gets nothing; a warning names it.
    """
    listed = _listed_addresses()
    recipients = list(
        User.objects.filter(is_active=True, notify_operations_alerts=True).filter(
            Q(is_staff=True) | Q(email__in=listed)
        )
    )
    # Addresses are compared in lower case, the form UserManager stores.
    unknown = listed - {user.email.lower() for user in User.objects.filter(email__in=listed)}
    for address in sorted(unknown):
        logger.warning(
            "STAFF_ALERT_EMAILS lists %s, which has no account; create a staff account for it to receive operations alerts",
            address,
        )
    return recipients


def is_operations_alert_recipient(user):
    """Return whether `user` may get operations alerts, whatever their own preference."""
    return user.is_staff or user.email.lower() in _listed_addresses()
