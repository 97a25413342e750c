"""An OpenAI-compatible chat completions server on 127.0.0.1 for tests, and its fixture.

Tests run the real `openai` client against it: queue the responses a test needs, call
the code under test, then assert on `server.requests`. It serves
POST /v1/chat/completions and POST /chat/completions; any other path gets a 404 in
OpenAI's error format. A request with nothing queued gets a 500 with the message
"no response queued",
which the client reports as an InternalServerError.

Register the fixture in tests/conftest.py with
`pytest_plugins = ["tests.fakes.openai_server"]`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

COMPLETION_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass
class ScriptedResponse:
    """One queued reply: HTTP status, headers, JSON body and a delay before sending."""

    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RecordedRequest:
    """One request as received: method, path, headers (lower-case names) and JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: object

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    def message_content(self, role: str) -> str:
        """Return the joined text of every message with `role`."""
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == role)


# Food items the tests script the fake model to return.
RICE = {
    "name": "white rice, cooked",
    "quantity": 1,
    "unit": "cup",
    "grams": 158,
    "calories": 205,
    "protein": 4.25,
    "carbs": 44.5,
    "fat": 0.44,
    "fiber": 0.6,
}
EGGS = {
    "name": "egg",
    "quantity": 2,
    "unit": "count",
    "grams": 100,
    "calories": 143,
    "protein": 12.6,
    "carbs": 0.7,
    "fat": 9.5,
    "fiber": 0,
}


def error_body(message: str, type: str = "invalid_request_error", code: str | None = None) -> dict:
    """Build an error body in OpenAI's format."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


class FakeOpenAIServer:
    """A threaded HTTP server that replays queued responses in order."""

    def __init__(self, host: str = "127.0.0.1"):
        self._responses: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self.requests: list[RecordedRequest] = []
        self._httpd = ThreadingHTTPServer((host, 0), self._make_handler())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai-server", daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The base URL to give the client, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed handlers, and close the socket."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # Scripting

    def queue(self, response: ScriptedResponse) -> None:
        with self._lock:
            self._responses.append(response)

    def queue_completion(
        self,
        content: object = None,
        *,
        finish_reason: str = "stop",
        refusal: str | None = None,
        model: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        usage: dict | None = None,
    ) -> None:
        """Queue a 200 chat completion. A dict or list `content` is sent JSON-encoded.

        `model` defaults to the model named in the request.
        """
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        self.queue(
            ScriptedResponse(
                status=200,
                body={
                    "_completion": True,
                    "content": content,
                    "finish_reason": finish_reason,
                    "refusal": refusal,
                    "model": model,
                    "usage": usage,
                },
                headers=dict(headers or {}),
                delay=delay,
            )
        )

    def queue_error(self, status: int, body: object = None, headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Queue an error status. `body` defaults to an OpenAI error object for `status`."""
        if body is None:
            body = error_body(f"fake error with HTTP status {status}", type="server_error" if status >= 500 else "invalid_request_error")
        self.queue(ScriptedResponse(status=status, body=body, headers=dict(headers or {}), delay=delay))

    def queue_delay(self, seconds: float, content: object = None, **completion_kwargs) -> None:
        """Queue a completion that is sent only after `seconds`, to provoke client timeouts."""
        self.queue_completion(content if content is not None else {"items": []}, delay=seconds, **completion_kwargs)

    @property
    def pending(self) -> int:
        """The number of queued responses not yet sent."""
        with self._lock:
            return len(self._responses)

    # Serving

    def _next_response(self) -> ScriptedResponse | None:
        with self._lock:
            return self._responses.popleft() if self._responses else None

    def _completion_body(self, spec: dict, request_body: object) -> dict:
        request_model = request_body.get("model") if isinstance(request_body, dict) else None
        content = spec["content"]
        usage = spec["usage"] or {
            "prompt_tokens": 100,
            "completion_tokens": len(content or "") // 4 + 1,
            "total_tokens": 100 + len(content or "") // 4 + 1,
        }
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": spec["model"] or request_model or "fake-model",
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": spec["refusal"]},
                    "logprobs": None,
                    "finish_reason": spec["finish_reason"],
                }
            ],
            "usage": usage,
        }

    def _make_handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base class names it
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                path = self.path.split("?", 1)[0]
                server.requests.append(
                    RecordedRequest("POST", path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if path not in COMPLETION_PATHS:
                    self._send(404, error_body(f"Unknown path {path}", code="unknown_url"), {})
                    return
                response = server._next_response()
                if response is None:
                    self._send(500, error_body("fake OpenAI server: no response queued", type="server_error"), {})
                    return
                if response.delay and server._stopping.wait(response.delay):
                    return
                payload = response.body
                if isinstance(payload, dict) and payload.get("_completion"):
                    payload = server._completion_body(payload, body)
                self._send(response.status, payload, response.headers)

            def _send(self, status: int, payload: object, headers: dict[str, str]):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("x-request-id", f"req_fake_{len(server.requests)}")
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up first, as in timeout tests.
                    pass

        return Handler


@pytest.fixture
def openai_server():
    """A started FakeOpenAIServer, stopped after the test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()
