"""SMTPBackend against a real aiosmtpd server: reply codes, pipelined and one command at a time,
connection reuse, and every way a connection can fail. smtplib is never mocked."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripcourse.backends import load_backend
from dripcourse.backends.base import DeliveryResult, Outcome, OutgoingMessage
from dripcourse.backends.smtp import SMTPBackend
from dripcourse.devtools.smtpserver import CapturingSMTPServer, Command
from dripcourse.errors import BadInput

SENT, TEMPORARY, PERMANENT = Outcome.SENT, Outcome.TEMPORARY, Outcome.PERMANENT


def make_message(key: str, recipient: str = "ann@example.org") -> OutgoingMessage:
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = "course@example.com"
    email["To"] = recipient
    email["Subject"] = f"Lesson for {recipient}"
    # 8-bit text, and dots where SMTP's dot-stuffing must give them back as they were.
    email.set_content(f"Run easy today, {key}.\n.\n.a dot first\n..two dots\nLäuft!\n")
    return OutgoingMessage(key, "course@example.com", recipient, email.as_bytes())


def batch(*recipients: str) -> list[OutgoingMessage]:
    return [make_message(f"m{n}", recipient) for n, recipient in enumerate(recipients, 1)]


def smtp_backend(url: str) -> SMTPBackend:
    backend = load_backend(url)
    assert isinstance(backend, SMTPBackend)
    return backend


def outcomes(results: list[DeliveryResult]) -> list[tuple[Outcome, int | None]]:
    return [(r.outcome, r.code) for r in results]


@pytest.fixture
def backend(smtpd: CapturingSMTPServer) -> Iterator[SMTPBackend]:
    backend = smtp_backend(smtpd.url)
    yield backend
    backend.close()


@pytest.fixture
def refusing_port() -> Iterator[int]:
    # Bound but not listening: connections are refused, and nothing else can take the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    # Listening, so the TCP connection is made, but nothing ever accepts or speaks.
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


# -- what the server answers ----------------------------------------------------------------


def test_a_refused_recipient_is_permanent_and_the_rest_of_the_batch_is_sent(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    smtpd.fail_recipient("gone@example.org", 550, "5.1.1 <gone@example.org>: no such user")

    results = backend.send(batch("ann@example.org", "gone@example.org", "bob@example.org"))

    assert outcomes(results) == [(SENT, 250), (PERMANENT, 550), (SENT, 250)]
    assert [r.key for r in results] == ["m1", "m2", "m3"]
    assert "no such user" in results[1].detail
    assert [m.rcpt_tos for m in smtpd.messages] == [("ann@example.org",), ("bob@example.org",)]
    assert backend.connection_count == 1


@pytest.mark.parametrize(
    ("command", "code", "outcome"),
    [
        ("DATA", 451, TEMPORARY),
        ("DATA", 554, PERMANENT),
        ("RCPT", 450, TEMPORARY),
        ("MAIL", 451, TEMPORARY),
        ("MAIL", 553, PERMANENT),
    ],
)
def test_reply_codes_map_to_outcomes_for_that_message_only(
    smtpd: CapturingSMTPServer, backend: SMTPBackend, command: Command, code: int, outcome: Outcome
) -> None:
    smtpd.fail_next(1, code, command=command)

    results = backend.send(batch("ann@example.org", "bob@example.org"))

    assert outcomes(results) == [(outcome, code), (SENT, 250)]
    assert "scripted failure" in results[0].detail
    assert [m.rcpt_tos for m in smtpd.messages] == [("bob@example.org",)]


def test_a_server_closing_the_channel_defers_the_batch_and_the_next_send_reconnects(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    smtpd.fail_next(1, 421, "4.3.2 shutting down", command="MAIL")

    first = backend.send(batch("ann@example.org", "bob@example.org", "cy@example.org"))
    second = backend.send(batch("ann@example.org"))

    assert [r.outcome for r in first] == [TEMPORARY] * 3
    assert all("shutting down" in r.detail for r in first)
    assert outcomes(second) == [(SENT, 250)]
    assert backend.connection_count == 2


def test_a_server_refusing_rset_gets_a_fresh_connection(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    smtpd.fail_recipient("gone@example.org")
    smtpd.fail_next(2, 554, command="RSET")

    results = backend.send(batch("gone@example.org", "ann@example.org", "bob@example.org"))

    assert [r.outcome for r in results] == [PERMANENT, SENT, SENT]
    assert backend.connection_count == 2
    assert smtpd.connections == 2


def test_a_non_ascii_address_goes_out_with_smtputf8(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    [result] = backend.send([make_message("m1", "jürgen@example.org")])
    assert result.outcome is SENT
    assert smtpd.messages[0].rcpt_tos == ("jürgen@example.org",)


# -- pipelining (RFC 2920) --------------------------------------------------------------------

TEN = [f"reader{n}@example.org" for n in range(1, 11)]
Script = Callable[[CapturingSMTPServer], None]


def refuse(n: int, code: int) -> Script:
    return lambda server: server.fail_recipient(f"reader{n}@example.org", code)


def fail_next(n: int, code: int, command: Command) -> Script:
    return lambda server: server.fail_next(n, code, command=command)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
@pytest.mark.parametrize(
    ("scripts", "expected"),
    [
        ([refuse(5, 550)], {5: (PERMANENT, 550)}),
        ([refuse(5, 450)], {5: (TEMPORARY, 450)}),
        ([refuse(3, 550), refuse(4, 551)], {3: (PERMANENT, 550), 4: (PERMANENT, 551)}),
        ([refuse(10, 550)], {10: (PERMANENT, 550)}),
        ([fail_next(1, 451, "DATA")], {1: (TEMPORARY, 451)}),
        ([fail_next(2, 554, "DATA")], {1: (PERMANENT, 554), 2: (PERMANENT, 554)}),
        # The scripted DATA failure falls on the first message that gets as far as its content.
        ([refuse(1, 550), fail_next(1, 452, "DATA")], {1: (PERMANENT, 550), 2: (TEMPORARY, 452)}),
        ([fail_next(1, 451, "MAIL")], {1: (TEMPORARY, 451)}),
        ([fail_next(1, 553, "MAIL")], {1: (PERMANENT, 553)}),
        ([fail_next(1, 450, "RCPT"), refuse(6, 550)], {1: (TEMPORARY, 450), 6: (PERMANENT, 550)}),
    ],
    ids=[
        "rcpt-550-mid",
        "rcpt-450-mid",
        "rcpt-two-in-a-row",
        "rcpt-last",
        "data-451-first",
        "data-554-first-two",
        "data-after-a-refusal",
        "mail-451",
        "mail-553",
        "rcpt-first-and-mid",
    ],
)
def test_a_failure_in_a_batch_of_ten_is_that_message_s_alone(
    smtpd: CapturingSMTPServer,
    pipelining: bool,
    scripts: list[Script],
    expected: dict[int, tuple[Outcome, int]],
) -> None:
    for script in scripts:
        script(smtpd)
    messages = batch(*TEN)
    backend = smtp_backend(smtpd.url + ("" if pipelining else "&pipelining=0"))

    results = backend.send(messages)
    backend.close()

    assert [r.key for r in results] == [m.key for m in messages]
    assert outcomes(results) == [expected.get(n, (SENT, 250)) for n in range(1, 11)]
    sent = [m for n, m in enumerate(messages, 1) if n not in expected]
    assert [m.data for m in smtpd.messages] == [m.data for m in sent]
    assert [m.rcpt_tos for m in smtpd.messages] == [(m.recipient,) for m in sent]
    assert backend.pipelined_count == (10 if pipelining else 0)
    assert backend.connection_count == smtpd.connections == 1


def test_pipelining_is_used_only_when_the_server_offers_it_and_the_url_allows_it() -> None:
    with CapturingSMTPServer(pipelining=False) as plain, CapturingSMTPServer() as pipelining:
        for url, used in [
            (plain.url, False),
            (pipelining.url + "&pipelining=0", False),
            (pipelining.url + "&pipelining=on", True),
        ]:
            backend = smtp_backend(url)
            assert [r.outcome for r in backend.send(batch(*TEN[:3]))] == [SENT] * 3
            backend.close()
            assert backend.pipelined_count == (3 if used else 0), url
        assert len(plain.messages) == 3
        assert len(pipelining.messages) == 6


@pytest.mark.parametrize("pipelining", ["1", "0"])
def test_dots_and_line_ends_arrive_as_sent(smtpd: CapturingSMTPServer, pipelining: str) -> None:
    bodies = [
        b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n...\r\nend\r\n",
        b".Subject: a dot at the very start\r\n\r\nx\r\n",
        b"Subject: last line is a dot\r\n\r\nx\r\n.\r\n",
        b"Subject: bare LF and CR\n\nline one\nline two\r.line three\r\n",
        b"Subject: no final line end\r\n\r\n.end",
    ]
    messages = [
        OutgoingMessage(f"m{n}", "course@example.com", "ann@example.org", body)
        for n, body in enumerate(bodies)
    ]
    with load_backend(f"{smtpd.url}&pipelining={pipelining}") as backend:
        assert [r.outcome for r in backend.send(messages)] == [SENT] * len(messages)

    assert [m.data for m in smtpd.messages] == [
        bodies[0],
        bodies[1],
        bodies[2],
        b"Subject: bare LF and CR\r\n\r\nline one\r\nline two\r\n.line three\r\n",
        b"Subject: no final line end\r\n\r\n.end\r\n",
    ]


def test_an_address_refused_before_sending_keeps_its_place_in_a_pipelined_batch(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    ann, smuggler, bob = batch("ann@example.org", "eve@example.org", "bob@example.org")
    smuggler = replace(smuggler, recipient="eve@example.org>\r\nRSET")

    results = backend.send([ann, smuggler, bob])

    assert outcomes(results) == [(SENT, 250), (Outcome.UNSENDABLE, None), (SENT, 250)]
    assert "line break" in results[1].detail
    assert [m.rcpt_tos for m in smtpd.messages] == [("ann@example.org",), ("bob@example.org",)]


def test_a_421_mid_batch_defers_the_rest_and_the_next_send_reconnects(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    smtpd.fail_recipient("reader4@example.org", 421, "4.3.2 going down")

    first = backend.send(batch(*TEN))
    smtpd.reset()
    second = backend.send(batch("ann@example.org"))

    assert outcomes(first) == [(SENT, 250)] * 3 + [(TEMPORARY, 421)] * 7
    assert all("going down" in r.detail for r in first[3:])
    assert outcomes(second) == [(SENT, 250)]
    assert backend.connection_count == 2


def test_a_server_going_away_mid_batch_defers_the_rest(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    messages = batch(*(f"reader{n}@example.org" for n in range(1000)))

    def stop_when_some_have_arrived() -> None:
        deadline = time.monotonic() + 10
        while len(smtpd.messages) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        smtpd.stop()

    stopper = threading.Thread(target=stop_when_some_have_arrived)
    stopper.start()
    results = backend.send(messages)
    stopper.join()

    sent = [r.outcome for r in results].count(SENT)
    assert 5 <= sent < len(messages)
    assert [r.outcome for r in results] == [SENT] * sent + [TEMPORARY] * (len(messages) - sent)
    assert all(f"127.0.0.1:{smtpd.port}" in r.detail for r in results[sent:])
    arrived = [m.data for m in smtpd.messages]
    assert arrived[:sent] == [m.data for m in messages[:sent]]
    # The message on the wire when the server went may have arrived without its reply reaching us.
    assert len(arrived) - sent <= 1
    smtpd.start()
    assert outcomes(backend.send(batch("ann@example.org"))) == [(SENT, 250)]
    assert backend.connection_count == 2


# -- the connection ---------------------------------------------------------------------------


def test_one_connection_serves_a_batch_and_later_sends(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    first = backend.send(batch(*(f"reader{n}@example.org" for n in range(5))))
    second = backend.send(batch("ann@example.org", "bob@example.org"))

    assert [r.outcome for r in first + second] == [SENT] * 7
    assert len(smtpd.messages) == 7
    assert backend.connection_count == 1
    assert smtpd.connections == 1


def test_a_connection_the_server_dropped_between_sends_is_replaced(
    smtpd: CapturingSMTPServer, backend: SMTPBackend
) -> None:
    backend.send(batch("ann@example.org"))
    smtpd.stop()
    smtpd.start()  # same port, new process as far as the client can tell

    assert outcomes(backend.send(batch("bob@example.org"))) == [(SENT, 250)]
    assert backend.connection_count == 2


def test_a_server_that_is_down_defers_every_message_promptly(refusing_port: int) -> None:
    started = time.monotonic()
    # open() (via `with`) must not raise either: the outage is reported per message.
    with load_backend(f"smtp://127.0.0.1:{refusing_port}") as backend:
        results = backend.send(batch("ann@example.org", "bob@example.org", "cy@example.org"))

    assert time.monotonic() - started < 2
    assert [r.outcome for r in results] == [TEMPORARY] * 3
    for result in results:
        assert result.detail == f"connection refused by 127.0.0.1:{refusing_port}"


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    backend = smtp_backend(f"smtp://127.0.0.1:{silent_port}?timeout=1")
    started = time.monotonic()
    results = backend.send(batch("ann@example.org", "bob@example.org"))
    backend.close()

    assert time.monotonic() - started < 3
    assert [r.outcome for r in results] == [TEMPORARY] * 2
    assert "timed out after 1 s" in results[0].detail


def test_a_rejected_login_keeps_all_mail_for_later() -> None:
    with CapturingSMTPServer(credentials=("ann", "right")) as server:
        backend = smtp_backend(f"smtp://ann:wrong@127.0.0.1:{server.port}")
        results = backend.send(batch("ann@example.org", "bob@example.org"))
        backend.close()

        assert outcomes(results) == [(TEMPORARY, 535)] * 2
        assert results[0].detail.startswith("authentication failed: 535")
        assert server.messages == []


def test_a_login_with_url_encoded_credentials_works() -> None:
    user, password = "ann@example.com", "p@ss:w/rd %?&#"
    with CapturingSMTPServer(credentials=(user, password)) as server:
        url = f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{server.port}"
        with load_backend(url) as backend:
            results = backend.send(batch("bob@example.org"))

        assert outcomes(results) == [(SENT, 250)]
        assert len(server.messages) == 1


def test_a_server_requiring_a_login_we_lack_keeps_all_mail_for_later() -> None:
    with CapturingSMTPServer(credentials=("ann", "right")) as server:
        backend = smtp_backend(server.url)
        results = backend.send(batch("ann@example.org", "bob@example.org"))
        backend.close()

    # 530 is about our configuration, not the recipient: never PERMANENT.
    assert outcomes(results) == [(TEMPORARY, 530)] * 2
    assert "authentication required" in results[0].detail


def test_starttls_against_a_server_without_it_keeps_mail_for_later(
    smtpd: CapturingSMTPServer,
) -> None:
    backend = smtp_backend(f"smtp://127.0.0.1:{smtpd.port}?tls=starttls")
    results = backend.send(batch("ann@example.org", "bob@example.org"))
    backend.close()

    assert [r.outcome for r in results] == [TEMPORARY] * 2
    assert results[0].detail.startswith("STARTTLS failed:")
    assert smtpd.messages == []


def test_implicit_tls_against_a_plain_server_keeps_mail_for_later(
    smtpd: CapturingSMTPServer,
) -> None:
    backend = smtp_backend(f"smtp://127.0.0.1:{smtpd.port}?tls=ssl&timeout=2")
    results = backend.send(batch("ann@example.org"))
    backend.close()

    assert [r.outcome for r in results] == [TEMPORARY]
    assert "TLS" in results[0].detail


# -- the URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "timeout"),
    [
        ("smtp://localhost", "localhost", 25, "none", 30.0),
        ("smtp://127.0.0.1", "127.0.0.1", 25, "none", 30.0),
        ("smtp://[::1]", "::1", 25, "none", 30.0),
        ("smtp://mail.example.com", "mail.example.com", 587, "starttls", 30.0),
        ("smtp://mail.example.com?tls=ssl", "mail.example.com", 465, "ssl", 30.0),
        ("smtp://mail.example.com?tls=none", "mail.example.com", 25, "none", 30.0),
        ("smtp://localhost?tls=starttls", "localhost", 587, "starttls", 30.0),
        ("smtp://Mail.Example.com:2525?tls=SSL&timeout=2.5", "mail.example.com", 2525, "ssl", 2.5),
    ],
)
def test_url_defaults(url: str, host: str, port: int, tls: str, timeout: float) -> None:
    backend = smtp_backend(url)
    assert (backend.host, backend.port, backend.tls, backend.timeout) == (host, port, tls, timeout)
    assert backend.username is None
    assert backend.password is None


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("smtp://mail.example.com?tls=tls", "tls must be one of starttls, ssl, none; not 'tls'"),
        ("smtp://mail.example.com?timeout=soon", "timeout must be a positive number"),
        ("smtp://mail.example.com?timeout=0", "timeout must be a positive number"),
        ("smtp://mail.example.com?timeout=-3", "timeout must be a positive number"),
        ("smtp://mail.example.com?timeout=inf", "timeout must be a positive number"),
        (
            "smtp://mail.example.com?tsl=ssl",
            "unknown option 'tsl'; known options: pipelining, timeout, tls",
        ),
        ("smtp://mail.example.com?pipelining=maybe", "pipelining must be 1 or 0"),
        ("smtp://mail.example.com?tls=ssl&tls=none", "option 'tls' given twice"),
        ("smtp://mail.example.com:99999", "port must be a number"),
        ("smtp://mail.example.com:smtp", "port must be a number"),
        ("smtp://", "no host"),
        ("smtp://ann@mail.example.com", "a user name without a password"),
        ("smtp://mail.example.com/inbox", "unexpected path"),
    ],
)
def test_bad_urls_are_bad_input(url: str, complaint: str) -> None:
    with pytest.raises(BadInput, match=re.escape(complaint)):
        load_backend(url)


@given(
    user=st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
    password=st.text(st.characters(exclude_categories=["Cs"])),
)
def test_credentials_are_percent_decoded(user: str, password: str) -> None:
    url = f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@mail.example.com"
    backend = smtp_backend(url)
    assert (backend.username, backend.password) == (user, password)


def test_pipelining_is_on_unless_the_url_turns_it_off() -> None:
    assert smtp_backend("smtp://localhost").pipelining is True
    assert smtp_backend("smtp://localhost?pipelining=1").pipelining is True
    assert smtp_backend("smtp://localhost?pipelining=0").pipelining is False
    assert smtp_backend("smtp://localhost?pipelining=OFF").pipelining is False
    assert "pipelining=0" in repr(smtp_backend("smtp://localhost?pipelining=0"))


def test_repr_shows_no_password() -> None:
    backend = smtp_backend("smtp://ann:hunter2@mail.example.com")
    assert "hunter2" not in repr(backend)
    assert "ann@mail.example.com:587" in repr(backend)
