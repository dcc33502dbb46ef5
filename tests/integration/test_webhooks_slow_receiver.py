"""A receiver that answers at once, then drips its body a byte at a time (each byte within the
read timeout, so no timeout fires): the attempt stops reading at its deadline instead of holding
the dispatch pass for as long as the receiver likes (4096 bytes at 9 s each are ten hours)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from dripcourse.domain.webhooks import new_secret
from dripcourse.sending import webhooks
from dripcourse.sending.webhooks import Claimed, post

DRIP_PAUSE = 0.01
"""Seconds between two bytes of the answer: the whole 4096-byte excerpt would take 41 s."""


class DrippingReceiver:
    """Answers `HTTP/1.1 503` with a 4096-byte body sent one byte at a time; counts what it sent
    before the client hung up."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        self.sent = 0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.1 503 Busy\r\ncontent-length: 4096\r\n\r\n")
                for _ in range(4096):
                    connection.sendall(b"x")
                    self.sent += 1
                    time.sleep(DRIP_PAUSE)
            except OSError:
                pass  # the client hung up: what we wanted
        self.done.set()

    def close(self) -> None:
        self._listener.close()


def test_a_dripping_answer_is_cut_at_the_attempts_deadline(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(webhooks, "ATTEMPT_DEADLINE", 0.3)
    receiver = DrippingReceiver()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    message = Claimed(1, "msg_1", "bounce.received", receiver.url, new_secret(), "{}", 1)
    try:
        with httpx.Client(timeout=webhooks.TIMEOUT) as client:
            attempt = post(client, message, now)
        assert receiver.done.wait(10)
    finally:
        receiver.close()
    assert not attempt.delivered and attempt.status == 503
    assert receiver.sent < 4096  # the rest was never waited for
