"""Writes on notifications: enqueue one, claim its log row, send it, record the outcome.

A NotificationLog row is unique per (user, kind, period key) and moves through these
statuses:

- sending: claimed by an attempt. Nothing has been handed to the mail server yet, so
  a later attempt may take the row over and send.
- unknown: set just before the message is written to the server. It stays unknown if
  the connection fails before the server replies, and then nothing resends it
  automatically; staff decide with the admin's resend action.
- sent, skipped (the user turned the kind off): final.
- failed: nothing was delivered (a permanent rejection, no usable address, missing
  content, or retries exhausted). A replayed or resent job may claim the row again.

`attempts` counts claims and doubles as the owner token of the current attempt: each
later write filters on it, so an attempt that lost its job lease to a newer attempt
cannot hand over a second copy.
"""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from notifications.delivery import deliver
from notifications.exceptions import (
    DeliveryDeferred,
    DeliveryOutcomeUnknown,
    DeliveryRejected,
    NotificationRequestError,
    NotificationUndeliverable,
)
from notifications.models import Channel, DeliveryStatus, NotificationKind, NotificationLog
from notifications.periods import OperationsPeriod, operations_key, parse_period_key
from notifications.rendering import render_notification
from notifications.selectors import is_operations_alert_recipient, operations_alert_recipients
from nutricoach.jobs import bulk
from nutricoach.jobs.services import JobRequest, enqueue, enqueue_many

logger = logging.getLogger(__name__)

SEND_TASK = "notifications.send"
QUEUE = "notifications"
# Kinds whose period key is the user's local date, so SQL can build it from a date column.
DATE_KEYED_KINDS = (NotificationKind.GOAL_ALERT, NotificationKind.GOAL_REMINDER)
CLAIMABLE_STATUSES = (DeliveryStatus.SENDING, DeliveryStatus.FAILED)
RESENDABLE_STATUSES = (DeliveryStatus.UNKNOWN, DeliveryStatus.FAILED)
OPERATIONS_DATA_KEYS = ("queue", "metric", "value", "threshold")


@dataclass(frozen=True)
class SendOutcome:
    """The result of one run of the send job: the log row's status and whether this run sent."""

    log_id: int
    status: str
    sent_now: bool
    detail: str = ""

    def as_result(self):
        return {"log_id": self.log_id, "status": self.status, "sent_now": self.sent_now, "detail": self.detail}


class _ClaimLost(Exception):
    """A newer attempt claimed the log row; this attempt must stop before handing over."""


def notification_enqueue(*, user_id, kind, period_key, data=None, run_at=None):
    """Enqueue the notification `kind` for one user and period, at most once.

    The idempotency key makes a second call for the same (user, kind, period) return
    the first job, so callers may call this on every run. See notifications.periods for
    the period key of each kind. Raise NotificationRequestError for an unknown kind, a
    period key that does not parse, or data that is not a JSON object of the expected
    keys; nothing is written then.
    """
    data = {} if data is None else data
    _validate_request(kind, period_key, data)

    return enqueue(
        SEND_TASK,
        {"user_id": user_id, "kind": kind, "period_key": period_key, "data": data},
        queue=QUEUE,
        idempotency_key=idempotency_key(user_id, kind, period_key),
        run_at=run_at,
    )


def notifications_enqueue_many(*, kind, items):
    """Enqueue `kind` for each (user_id, period_key, data) of `items` with bulk inserts.

    Periods already enqueued are skipped, as notification_enqueue would; return how many
    jobs are new. Batch jobs use this, because one enqueue per user would cost several
    queries each. Raise NotificationRequestError, writing nothing, if any item is invalid.
    """
    requests = []
    for user_id, period_key, data in items:
        _validate_request(kind, period_key, data)
        requests.append(JobRequest(
            payload={"user_id": user_id, "kind": kind, "period_key": period_key, "data": data},
            idempotency_key=idempotency_key(user_id, kind, period_key),
        ))
    return enqueue_many(SEND_TASK, requests, queue=QUEUE)


def notifications_insert_sql(*, kind, source, now):
    """Return (sql, params) of an INSERT of one send job of `kind` per row of `source`.

    PostgreSQL batch statements use it to write their notifications in a data-modifying
    CTE. `source` names a relation with the columns user_id, local_date (a date) and data
    (a jsonb object). The period key is the local date as YYYY-MM-DD, so only the
    date-keyed kinds are accepted. Each job gets the payload, idempotency key and job
    fields that notifications_enqueue_many() would give it, and a period already
    enqueued is skipped. The statement returns the id of each new job: pass their count
    to notifications_wake_on_commit(). Raise NotificationRequestError for another kind.
    """
    if kind not in DATE_KEYED_KINDS:
        raise NotificationRequestError(
            f"Set-based notification enqueue supports only {', '.join(DATE_KEYED_KINDS)}, whose period "
            f"key is a date; got {kind!r}. Use notifications_enqueue_many() for other kinds."
        )
    kind = NotificationKind(kind).value
    period_key = "to_char(r.local_date, 'YYYY-MM-DD')"
    requests = (
        f"(SELECT jsonb_build_object('user_id', r.user_id, 'kind', %s::text, 'period_key', {period_key}, "
        f"'data', r.data) AS payload, "
        f"'notify:' || r.user_id || ':' || %s || ':' || {period_key} AS idempotency_key, "
        f"NULL::bigint AS owner_id FROM {source} r) AS requests"
    )
    return bulk.insert_jobs_sql(SEND_TASK, requests=requests, requests_params=[kind, kind], now=now, queue=QUEUE)


def notifications_wake_on_commit(created):
    """Wake the notifications queue after commit for `created` jobs of notifications_insert_sql()."""
    bulk.push_wakeups_on_commit(SEND_TASK, created, queue=QUEUE)


def idempotency_key(user_id, kind, period_key):
    """Return the job key that makes a (user, kind, period) notification unique."""
    return f"notify:{user_id}:{kind}:{period_key}"


def operations_alert_enqueue(*, queue, metric, value, threshold, at=None):
    """Enqueue one operations alert per recipient for the UTC hour of `at` (default now).

    Recipients come from notifications.selectors.operations_alert_recipients. A second
    call in the same hour for the same queue and metric enqueues nothing new. Return
    the EnqueueResult of each recipient.
    """
    period_key = operations_key(queue=queue, metric=metric, at=at or timezone.now())
    data = {"queue": queue, "metric": metric, "value": value, "threshold": threshold}
    _validate_request(NotificationKind.OPERATIONS_ALERT, period_key, data)

    return [
        notification_enqueue(
            user_id=user.id, kind=NotificationKind.OPERATIONS_ALERT, period_key=period_key, data=data
        )
        for user in operations_alert_recipients()
    ]


def notification_send(*, user_id, kind, period_key, data):
    """Claim the log row of one notification, then render, send and record it.

    Return a SendOutcome when the notification was sent, skipped by preference, or
    already handled by an earlier run. Raise DeliveryDeferred when a retry is safe,
    and DeliveryRejected, DeliveryOutcomeUnknown or NotificationUndeliverable when it
    is not; the log row records the reason in each case.
    """
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotificationUndeliverable(f"User {user_id} not found; the account may have been deleted, so no {kind} is sent.")
    log, token = _claim(user=user, kind=kind, period_key=period_key, data=data)
    if token is None:
        logger.info("notification %s is already %s; nothing to send", log.id, log.status)
        return SendOutcome(log.id, log.status, sent_now=False, detail=f"already {log.status}")

    skip_reason = _skip_reason(user, kind)
    if skip_reason:
        _finish(log, token, status=DeliveryStatus.SKIPPED, error=skip_reason)
        logger.warning("notification %s skipped user=%s kind=%s: %s", log.id, user.id, kind, skip_reason)
        return SendOutcome(log.id, DeliveryStatus.SKIPPED, sent_now=False, detail=skip_reason)
    try:
        _check_address(user)
        rendered = render_notification(user=user, kind=kind, period_key=period_key, data=data)
    except NotificationUndeliverable as exc:
        _finish(log, token, status=DeliveryStatus.FAILED, error=str(exc))
        raise

    message = EmailMultiAlternatives(rendered.subject, rendered.text, settings.DEFAULT_FROM_EMAIL, [user.email])
    message.attach_alternative(rendered.html, "text/html")
    NotificationLog.objects.filter(pk=log.pk, attempts=token).update(
        subject=rendered.subject[:255], recipient=user.email, channel=Channel.EMAIL, updated_at=timezone.now()
    )
    return _deliver_and_record(log, token, message)


def notification_mark_abandoned(*, user_id, kind, period_key, reason):
    """Mark a notification failed whose job gave up while it was still `sending`."""
    return NotificationLog.objects.filter(
        user_id=user_id, kind=kind, period_key=period_key, status=DeliveryStatus.SENDING
    ).update(status=DeliveryStatus.FAILED, error=reason[:2000], updated_at=timezone.now())


@transaction.atomic
def notification_resend(*, log_id):
    """Enqueue a new send job for an unknown or failed notification; return the EnqueueResult or None.

    The new job gets its own idempotency key, so it runs even though the first job
    finished. Return None when the row is in no resendable status (it was sent,
    skipped or is being sent).
    """
    log = NotificationLog.objects.select_for_update().filter(pk=log_id, status__in=RESENDABLE_STATUSES).first()
    if log is None:
        return None
    previous = log.status
    log.status = DeliveryStatus.SENDING
    log.error = f"resend requested while the status was {previous}"
    log.save(update_fields=["status", "error", "updated_at"])

    result = enqueue(
        SEND_TASK,
        {"user_id": log.user_id, "kind": log.kind, "period_key": log.period_key, "data": log.data},
        queue=QUEUE,
        idempotency_key=f"{idempotency_key(log.user_id, log.kind, log.period_key)}:resend:{uuid.uuid4().hex}",
    )
    logger.info("notification %s resend enqueued as job %s (was %s)", log.id, result.job.id, previous)
    return result


def _validate_request(kind, period_key, data):
    if not isinstance(data, dict):
        raise NotificationRequestError(f"Notification data must be a JSON object, got {type(data).__name__}.")
    period = parse_period_key(kind, period_key)
    if isinstance(period, OperationsPeriod):
        _validate_operations_data(period, data)


def _validate_operations_data(period, data):
    missing = [key for key in OPERATIONS_DATA_KEYS if key not in data]
    if missing:
        raise NotificationRequestError(
            f"Operations alert data is missing {', '.join(missing)}; pass queue, metric, value and threshold."
        )
    if (data["queue"], data["metric"]) != (period.queue, period.metric):
        raise NotificationRequestError(
            f"Operations alert data names {data['queue']}:{data['metric']} but the period key "
            f"names {period.queue}:{period.metric}; build both from the same queue and metric."
        )
    for key in ("value", "threshold"):
        if isinstance(data[key], bool) or not isinstance(data[key], int | float):
            raise NotificationRequestError(f"Operations alert {key} must be a number, got {data[key]!r}.")


def _claim(*, user, kind, period_key, data):
    """Return (log, token); the token is None when the row is not this attempt's to send."""
    log, created = NotificationLog.objects.get_or_create(
        user=user, kind=kind, period_key=period_key, defaults={"status": DeliveryStatus.SENDING, "data": data}
    )
    if log.status not in CLAIMABLE_STATUSES:
        return log, None

    token = log.attempts + 1
    claimed = NotificationLog.objects.filter(pk=log.pk, status=log.status, attempts=log.attempts).update(
        status=DeliveryStatus.SENDING, attempts=token, data=data, updated_at=timezone.now()
    )
    if not claimed:
        log.refresh_from_db()
        return log, None
    log.status, log.attempts = DeliveryStatus.SENDING, token
    return log, token


def _skip_reason(user, kind):
    if not user.is_active:
        return f"the account {user.id} is inactive"
    if not user.wants_notification(kind):
        return f"the user turned {kind} emails off"
    if kind == NotificationKind.OPERATIONS_ALERT and not is_operations_alert_recipient(user):
        return "operations alerts go only to staff and to the addresses in STAFF_ALERT_EMAILS"
    return ""


def _check_address(user):
    if not user.email:
        raise NotificationUndeliverable(f"User {user.id} has no email address; add one to send notifications.")
    if not user.email_verified:
        raise NotificationUndeliverable(
            f"The email address of user {user.id} is not verified; notifications are sent only to verified addresses."
        )


def _mark_handover(log, token):
    updated = NotificationLog.objects.filter(pk=log.pk, attempts=token, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.UNKNOWN,
        error="handed to the mail server; its reply has not been recorded",
        updated_at=timezone.now(),
    )
    if not updated:
        raise _ClaimLost(f"notification {log.id} was claimed by a newer attempt")


def _deliver_and_record(log, token, message):
    logger.info("notification %s sending attempt=%s kind=%s user=%s", log.id, token, log.kind, log.user_id)
    try:
        deliver(message, before_handover=lambda: _mark_handover(log, token))
    except _ClaimLost as exc:
        logger.warning("notification %s: %s; this attempt stops", log.id, exc)
        return SendOutcome(log.id, DeliveryStatus.SENDING, sent_now=False, detail=str(exc))
    except DeliveryDeferred as exc:
        _finish(log, token, status=DeliveryStatus.SENDING, error=str(exc))
        raise
    except (DeliveryRejected, NotificationUndeliverable) as exc:
        _finish(log, token, status=DeliveryStatus.FAILED, error=str(exc))
        raise
    except DeliveryOutcomeUnknown as exc:
        _finish(log, token, status=DeliveryStatus.UNKNOWN, error=str(exc))
        logger.error("notification %s outcome unknown; it will not be resent automatically: %s", log.id, exc)
        raise

    now = timezone.now()
    _finish(log, token, status=DeliveryStatus.SENT, error="", sent_at=now)
    logger.info("notification %s sent kind=%s user=%s", log.id, log.kind, log.user_id)
    return SendOutcome(log.id, DeliveryStatus.SENT, sent_now=True)


def _finish(log, token, *, status, error, **fields):
    NotificationLog.objects.filter(pk=log.pk, attempts=token).update(
        status=status, error=error[:2000], updated_at=timezone.now(), **fields
    )
