"""Flaky and failing mail servers, over real sockets, against the installed `dripcourse tick`.

The promises (README, "Delivery and its guarantees"): a temporary failure (4xx, a server that is
down or silent, TLS or log-in trouble) keeps the mail and retries it later, and says why; a
permanent one (5xx for the recipient) is tried once, suppresses the address, and is never tried
again, not even for the next lesson.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

from dripcourse.devtools.smtpserver import CapturingSMTPServer, Command

from .conftest import DUE, Installer, per_recipient, reader

RETRY = timedelta(minutes=6)
"""Past the first retry delay (DRIPCOURSE_RETRY_FIRST_DELAY, 5 minutes)."""


class FlakyServer(CapturingSMTPServer):
    """Answers 451 at the end of DATA for a share of the messages, chosen at random (seeded);
    `attempts` counts every RCPT TO per address, accepted or not."""

    def __init__(self, failure_rate: float = 0.0, seed: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.failure_rate = failure_rate
        self.refused = 0
        self.attempts: Counter[str] = Counter()
        self._random = random.Random(seed)

    def _scripted_reply(self, command: Command) -> str | None:
        scripted = super()._scripted_reply(command)
        if scripted is None and command == "DATA" and self._random.random() < self.failure_rate:
            self.refused += 1
            return "451 4.3.0 flaky server: try again later"
        return scripted

    def _recipient_reply(self, address: str) -> str | None:
        self.attempts[address.lower()] += 1
        return super()._recipient_reply(address)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port where the kernel completes the TCP handshake but nobody ever says a word."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_hold() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for each in held:
            each.close()
        listener.close()


def test_451_to_a_third_of_the_messages_still_delivers_each_exactly_once(
    installation: Installer,
) -> None:
    n = 500
    with FlakyServer(failure_rate=0.3, seed=5) as server:
        setup = installation(n, server.url)
        now = DUE + timedelta(minutes=1)
        ticks = 0
        while setup.statuses() != {"sent": n} and ticks < 12:
            setup.tick(now)
            ticks += 1
            # Past the longest retry delay (6 h), well inside the 3 days before giving up.
            now += timedelta(hours=7)
        counts = per_recipient(server)
        print(
            f"\n[reliability] 451 x 30%: {n} messages, {server.refused} answered 451, "
            f"{ticks} ticks, received {len(server.messages)}, "
            f"lost {sum(1 for i in range(n) if counts[reader(i)] == 0)}, "
            f"doubled {sum(c - 1 for c in counts.values())}"
        )
        assert server.refused > n // 5
        assert setup.statuses() == {"sent": n}
        assert all(counts[reader(i)] == 1 for i in range(n))
        assert len(server.messages) == n


def test_550_recipients_are_tried_once_suppressed_and_never_tried_again(
    installation: Installer,
) -> None:
    n = 100
    refused = [reader(i) for i in range(0, n, 10)]
    with FlakyServer() as server:
        for address in refused:
            server.fail_recipient(address)
        setup = installation(n, server.url)
        setup.tick(DUE + timedelta(minutes=1))
        setup.tick(DUE + timedelta(days=1))  # a retry would have come by now
        # A week on, lesson 2 is due for everyone still enrolled.
        setup.tick(DUE + timedelta(days=8, hours=1))
        lesson_2 = per_recipient(server, "Lesson 2:")
        print(
            f"\n[reliability] 550 for {len(refused)} of {n}: RCPT attempts to them "
            f"{sum(server.attempts[a] for a in refused)}, lesson 2 to the rest {sum(lesson_2.values())}"
        )
        assert {a: server.attempts[a] for a in refused} == dict.fromkeys(refused, 1)
        assert not set(per_recipient(server)) & set(refused)
        assert not set(lesson_2) & set(refused)
        assert sum(lesson_2.values()) == n - len(refused)
        suppressed = {str(row[0]) for row in setup.rows("SELECT email FROM suppressions")}
        assert suppressed == set(refused)
        failed = setup.rows(
            "SELECT count(*), min(smtp_code), max(last_error) FROM deliveries WHERE status = 'failed'"
        )
        assert failed[0][:2] == (len(refused), 550)
        assert "mailbox unavailable" in str(failed[0][2])


def test_server_down_fails_fast_says_why_and_sends_all_when_it_is_back(
    installation: Installer,
) -> None:
    n = 50
    port = free_port()
    setup = installation(n, f"smtp://127.0.0.1:{port}?tls=none")
    began = time.monotonic()
    done = setup.run("-v", "tick", "--now", (DUE + timedelta(minutes=1)).isoformat(), "-q")
    took = time.monotonic() - began
    print(f"\n[reliability] server down: pass over {n} messages ended in {took:.1f} s")
    assert done.returncode == 0, done.stderr
    assert f"cannot open SMTP connection: connection refused by 127.0.0.1:{port}" in done.stderr
    assert took < 10
    assert setup.statuses() == {"pending": n}
    (error,) = setup.rows("SELECT DISTINCT last_error FROM deliveries")
    assert error == (f"connection refused by 127.0.0.1:{port}",)

    with CapturingSMTPServer(port=port) as server:
        setup.tick(DUE + timedelta(minutes=1) + RETRY)
        assert setup.statuses() == {"sent": n}
        assert sorted(per_recipient(server).values()) == [1] * n


def test_a_silent_server_times_out_and_the_mail_waits(
    installation: Installer, silent_port: int
) -> None:
    # Five send groups: the timeout is paid once per pass, not once per group.
    n = 100
    setup = installation(n, f"smtp://127.0.0.1:{silent_port}?tls=none&timeout=1")
    setup.env["DRIPCOURSE_SEND_GROUP"] = "20"
    began = time.monotonic()
    done = setup.run("-v", "tick", "--now", (DUE + timedelta(minutes=1)).isoformat(), "-q")
    took = time.monotonic() - began
    print(f"\n[reliability] silent server, timeout=1: pass over {n} messages ended in {took:.1f} s")
    assert done.returncode == 0, done.stderr
    cause = f"timed out after 1 s waiting for 127.0.0.1:{silent_port}"
    assert f"cannot open SMTP connection: {cause}" in done.stderr
    assert done.stderr.count(cause) == 1
    assert took < 5
    assert setup.statuses() == {"pending": n}


@pytest.mark.parametrize(
    ("server_kwargs", "url_auth", "url_tls", "cause"),
    [
        (
            {"credentials": ("mailer", "right")},
            "mailer:wrong@",
            "none",
            "authentication failed: 535 5.7.8 Authentication credentials invalid",
        ),
        ({}, "", "starttls", "STARTTLS failed: STARTTLS extension not supported by server."),
    ],
    ids=["wrong-password", "starttls-not-offered"],
)
def test_configuration_trouble_is_named_and_the_mail_is_kept(
    installation: Installer,
    server_kwargs: dict[str, object],
    url_auth: str,
    url_tls: str,
    cause: str,
) -> None:
    n = 5
    with CapturingSMTPServer(**server_kwargs) as server:  # type: ignore[arg-type]
        setup = installation(n, f"smtp://{url_auth}127.0.0.1:{server.port}?tls={url_tls}")
        done = setup.run("tick", "--now", (DUE + timedelta(minutes=1)).isoformat())
        assert done.returncode == 0, done.stderr
        print(f"\n[reliability] {cause!r} printed {done.stdout.count(cause)} time(s)")
        assert done.stdout.count(cause) == n
        assert setup.statuses() == {"pending": n}
        assert setup.rows("SELECT DISTINCT last_error FROM deliveries") == [(cause,)]
        assert server.messages == []

        # Once the operator fixes the URL, the kept mail goes out at its retry.
        fixed = "mailer:right@" if url_auth else ""
        setup.tick(DUE + timedelta(minutes=1) + RETRY, backend=f"smtp://{fixed}{server.url[7:]}")
        assert setup.statuses() == {"sent": n}
        assert sorted(per_recipient(server).values()) == [1] * n
