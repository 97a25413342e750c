"""Errors of the notifications app.

The send job translates them into the job runtime's errors in one place
(notifications.tasks): `DeliveryDeferred` is retried, every other `NotificationError`
ends the job.
"""


class NotificationError(Exception):
    """Base class for errors raised while preparing or delivering a notification."""


class NotificationRequestError(NotificationError, ValueError):
    """The kind, period key or data of a notification request is invalid; nothing was written."""


class NotificationUndeliverable(NotificationError):
    """The notification cannot be sent as requested: no address, an unverified one, or no content."""


class DeliveryError(NotificationError):
    """The mail server or the connection to it failed; `smtp_code` is the reply code, if any."""

    def __init__(self, message, *, smtp_code=None):
        super().__init__(message)
        self.smtp_code = smtp_code


class DeliveryDeferred(DeliveryError):
    """A temporary failure (4xx reply, connection error) before the server took the message."""


class DeliveryRejected(DeliveryError):
    """The server rejected the message permanently (5xx reply); nothing was delivered."""


class DeliveryOutcomeUnknown(DeliveryError):
    """The message was handed over but no reply arrived, so it may or may not be delivered."""
