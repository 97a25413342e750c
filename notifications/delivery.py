"""Hand one email to the configured mailer and report how far it got.

Django's SMTP backend raises the same SMTPException or OSError whether the server never
saw the message or the connection dropped while the server was replying to the end of
the message data. Only the second case can have delivered the message, and retrying it
could send a duplicate. So with the SMTP backend, this module lets Django open the
connection, with host, port, STARTTLS or implicit TLS, login and timeout taken from
settings.MAILERS. Then it drives the mail transaction itself with smtplib: MAIL FROM,
RCPT TO, DATA, the message, and the reply to the end of data.

`before_handover()` runs after the server accepted the DATA command and before the
message is written. Failures before that point raise DeliveryDeferred (4xx replies,
connection errors) or DeliveryRejected (5xx replies), and nothing was delivered. A
connection that fails after the message was written and before the server replied raises
DeliveryOutcomeUnknown.

Other backends (file, console, locmem) write locally and either succeed or raise, so they
are called through send_messages(), with `before_handover()` called first as well.
"""

import email.policy
import logging
import re
import smtplib

from django.core.mail import mailers
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend

from notifications.exceptions import (
    DeliveryDeferred,
    DeliveryOutcomeUnknown,
    DeliveryRejected,
    NotificationUndeliverable,
)

logger = logging.getLogger(__name__)

CRLF = b"\r\n"
# RFC 5321 section 4.5.2: a line of the message that starts with a period gets one more.
LEADING_PERIOD = re.compile(rb"(?m)^\.")


def deliver(message, *, before_handover):
    """Send an EmailMessage through settings.MAILERS["default"]; raise a DeliveryError on failure.

    mailers.default builds a new backend from the current settings on every access, so
    tests that override settings.MAILERS take effect immediately.
    """
    mailer = mailers.default
    if isinstance(mailer, SMTPEmailBackend):
        _deliver_smtp(mailer, message, before_handover)
        return

    before_handover()
    try:
        sent = mailer.send_messages([message])
    except OSError as exc:
        raise DeliveryDeferred(f"the {type(mailer).__module__} mailer failed: {exc}") from exc
    if sent != 1:
        raise DeliveryRejected(f"the {type(mailer).__module__} mailer sent {sent} messages instead of 1")


def _deliver_smtp(mailer, message, before_handover):
    try:
        sender = mailer.prep_address(message.from_email)
        recipients = [mailer.prep_address(address) for address in message.recipients()]
    except ValueError as exc:
        raise NotificationUndeliverable(f"invalid email address: {exc}") from exc
    content = message.message(policy=email.policy.SMTP).as_bytes()

    try:
        _open(mailer)
        _send_envelope(mailer.connection, sender, recipients, content, before_handover)
    finally:
        _close(mailer)


def _open(mailer):
    try:
        mailer.open()
    except smtplib.SMTPResponseException as exc:
        raise _reply_error("connecting", exc.smtp_code, exc.smtp_error) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryRejected(f"SMTP server {mailer.host}:{mailer.port} does not support {exc}") from exc
    except OSError as exc:
        raise DeliveryDeferred(f"connecting to SMTP server {mailer.host}:{mailer.port} failed: {exc}") from exc


def _send_envelope(smtp, sender, recipients, content, before_handover):
    try:
        smtp.ehlo_or_helo_if_needed()
        _expect("MAIL FROM", *smtp.mail(sender))
        for recipient in recipients:
            _expect(f"RCPT TO {recipient}", *smtp.rcpt(recipient))
        _expect("DATA", *smtp.docmd("DATA"), accepted=(354,))
    except smtplib.SMTPResponseException as exc:
        raise _reply_error("EHLO", exc.smtp_code, exc.smtp_error) from exc
    except OSError as exc:
        raise DeliveryDeferred(f"the SMTP connection failed before the message was sent: {exc}") from exc

    try:
        before_handover()
    except BaseException:
        # The server now reads every line as message data, so a QUIT would go unanswered
        # until the timeout. Closing the socket makes it discard the message at once.
        smtp.close()
        raise
    try:
        # The end-of-data marker is the last bytes written, so a failed write means the
        # server never saw it and discards the partial message.
        smtp.send(_data_block(content))
    except OSError as exc:
        raise DeliveryDeferred(f"the SMTP connection failed while sending the message: {exc}") from exc

    try:
        code, reply = smtp.getreply()
    except OSError as exc:
        raise DeliveryOutcomeUnknown(
            f"the SMTP connection failed after the message was sent and before the server replied: {exc}"
        ) from exc
    _expect("end of data", code, reply)


def _data_block(content):
    block = LEADING_PERIOD.sub(b"..", content)
    if not block.endswith(CRLF):
        block += CRLF
    return block + b"." + CRLF


def _expect(step, code, reply, *, accepted=range(200, 300)):
    if code not in accepted:
        raise _reply_error(step, code, reply)


def _reply_error(step, code, reply):
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    message = f"SMTP server replied {code} {text} to {step}"
    if 400 <= code < 500:
        return DeliveryDeferred(message, smtp_code=code)
    if 500 <= code < 600:
        return DeliveryRejected(message, smtp_code=code)
    return DeliveryDeferred(f"SMTP server sent the unexpected reply {code} {text} to {step}", smtp_code=code)


def _close(mailer):
    # The outcome is already decided; a failing QUIT must not replace it.
    try:
        mailer.close()
    except (smtplib.SMTPException, OSError):
        logger.debug("closing the SMTP connection failed", exc_info=True)
