"""A scriptable SMTP server on 127.0.0.1 for tests (aiosmtpd), and its fixtures.

Queue what the server does with each of the next mail transactions in
`smtp_server.script`, then read what it accepted from `smtp_server.messages`. A
transaction with nothing queued is accepted. The behaviours:

- ACCEPT: reply 250 to the end of data and keep the message.
- BUSY: reply 421 to MAIL FROM, before the client sends anything of the message.
- TEMPFAIL: take the whole message, then reply 451 to the end of data; nothing is kept.
- REJECT: reply 550 to RCPT TO.
- DROP_AFTER_DATA: take the whole message, then close the connection without a reply.
  The message is kept in `smtp_server.dropped`, because a real server may deliver it.

`smtp_server.handler.on_rcpt`, when set, is called in a worker thread before each
reply to RCPT TO, so a test can change the database while a send is in progress.
"""

import asyncio
import email
import email.policy
import socket
import threading
from collections import deque
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller
from django.db import connections

ACCEPT = "accept"
BUSY = "busy"
TEMPFAIL = "tempfail"
REJECT = "reject"
DROP_AFTER_DATA = "drop_after_data"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server received it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage

    @property
    def subject(self):
        return str(self.message["Subject"])

    def part(self, content_type):
        """Return the decoded text of the first part of `content_type`, or None."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return part.get_content()
        return None

    @property
    def text(self):
        return self.part("text/plain")

    @property
    def html(self):
        return self.part("text/html")


class ScriptedHandler:
    """aiosmtpd hooks that act as the queued script specifies; see the module docstring."""

    def __init__(self):
        self.script = deque()
        self.messages = []
        self.dropped = []
        self.transactions = []
        self.on_rcpt = None
        self._lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            action = self.script.popleft() if self.script else ACCEPT
            self.transactions.append(action)
        session.action = action
        if action == BUSY:
            return "421 4.3.2 Service busy, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.on_rcpt is not None:
            # Django refuses database calls from a thread that runs an event loop.
            await asyncio.to_thread(_call_and_close_connections, self.on_rcpt)
        if session.action == REJECT:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            message=email.message_from_bytes(envelope.original_content, policy=email.policy.default),
        )
        if session.action == TEMPFAIL:
            return "451 4.3.0 Temporary failure, try again later"
        if session.action == DROP_AFTER_DATA:
            self.dropped.append(received)
            # abort() closes the socket at once, so the reply aiosmtpd writes next goes nowhere.
            server.transport.abort()
            return "250 OK"
        self.messages.append(received)
        return "250 OK"


class SMTPTestServer:
    def __init__(self):
        self.handler = ScriptedHandler()
        self.port = _free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def script(self):
        return self.handler.script

    @property
    def messages(self):
        return self.handler.messages

    @property
    def dropped(self):
        return self.handler.dropped

    @property
    def transactions(self):
        return self.handler.transactions


def _call_and_close_connections(func):
    try:
        func()
    finally:
        connections.close_all()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    server = SMTPTestServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def smtp_mailer(settings, smtp_server):
    """Point settings.MAILERS["default"] at the test server with Django's SMTP backend."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 5},
        }
    }
    return smtp_server
