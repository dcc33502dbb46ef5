"""A webhook receiver on loopback for the tests: a real HTTP server in a thread that records what
it is sent, and can be down (answering 503 with a long, hostile body); a URL ending in `/redirect`
answers 307 to `/hook`.
The test verifies what it recorded with `standardwebhooks`, the reference library."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

from standardwebhooks.webhooks import Webhook

HOSTILE = "\x1b[31m<script>alert(1)</script>\r\nSet-Cookie: x=1\x00" * 2000


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    accepted: bool


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.down = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if self.path.endswith("/redirect"):
                    self.send_response(307)
                    self.send_header("location", "/hook")
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                accepted = not receiver.down
                with receiver._lock:
                    receiver.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, accepted)
                    )
                answer = b"ok" if accepted else HOSTILE.encode()
                self.send_response(200 if accepted else 503)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [each for each in self.requests if each.accepted]


def verify(secret: str, received: Received, at: datetime) -> dict[str, Any]:
    """The payload, verified by `standardwebhooks` with its clock at `at` (the test's clock: it
    checks the timestamp within five minutes of its own now)."""

    class Then(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return at

    with mock.patch("standardwebhooks.webhooks.datetime", Then):
        payload = Webhook(secret).verify(received.body, received.headers)
    assert payload == json.loads(received.body)
    return dict(payload)
