"""The notifications queue's job: send one notification email, claimed through its log row."""

import logging

from notifications import services
from notifications.exceptions import DeliveryDeferred, NotificationError
from nutricoach.jobs.backoff import Backoff
from nutricoach.jobs.errors import RetryableError, TerminalError
from nutricoach.jobs.registry import job_task

logger = logging.getLogger(__name__)

# Five attempts spread over about a minute: 4 s, 8 s, 16 s, 32 s, plus up to 3 s of
# jitter each, so a mail server that is briefly down does not get every retry at once.
SEND_BACKOFF = Backoff.exponential_jitter(4.0, jitter=3.0, cap=120.0)


def _record_abandoned(job, error):
    payload = job.payload
    services.notification_mark_abandoned(
        user_id=payload.get("user_id"),
        kind=payload.get("kind"),
        period_key=payload.get("period_key"),
        reason=f"gave up after {job.attempts_made} attempts: {str(error).splitlines()[0] if error else 'no error text'}",
    )


@job_task(
    services.SEND_TASK,
    queue="notifications",
    attempts=5,
    backoff=SEND_BACKOFF,
    on_dead_letter=_record_abandoned,
)
def send_notification(ctx, user_id, kind, period_key, data):
    """Send the notification `kind` of one period to one user, unless an earlier run did."""
    ctx.log(f"sending {kind} {period_key} to user {user_id} (attempt {ctx.attempt})")
    try:
        outcome = services.notification_send(user_id=user_id, kind=kind, period_key=period_key, data=data)
    except DeliveryDeferred as exc:
        raise RetryableError(str(exc)) from exc
    except NotificationError as exc:
        raise TerminalError(f"{type(exc).__name__}: {exc}") from exc

    ctx.log(f"notification {outcome.log_id} is {outcome.status}" + (f": {outcome.detail}" if outcome.detail else ""))
    return outcome.as_result()
