"""A hostile bounce mailbox: malformed and forged reports sit beside two genuine bounces. The genuine
ones are applied, nothing crashes or hangs, the unreadable ones are quarantined, and nobody is
suppressed by a forgery."""

from __future__ import annotations

import mailbox
import os
import re
import stat
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from test_bounces import LESSON_ONE, arf, dsn, tick

from dripcourse.app import subscriptions
from dripcourse.app.bouncereports import read_message
from dripcourse.app.bounces import BounceRunStopped, process_mailbox
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer, ReceivedMessage
from dripcourse.errors import UnreadableReport
from dripcourse.store.db import Database
from dripcourse.store.models import Suppression

ADA, GRACE, ALAN = "ada@example.com", "grace@example.com", "alan@example.com"
BOUNCES = "bounces@northside-physio.example"
VERP = re.compile(r"bounces\+(\d+)-([0-9a-f]{8})@northside-physio\.example")


def lessons_for_three(
    database: Database, settings: Settings, clock: FixedClock, smtpd: CapturingSMTPServer
) -> dict[str, ReceivedMessage]:
    with database.transaction() as session:
        for email in (ADA, GRACE, ALAN):
            subscriptions.subscribe(
                session,
                email=email,
                course_slug="runners",
                name=email.partition("@")[0].title(),
                timezone="America/Toronto",
                confirmed=True,
                now=clock.now(),
            )
    tick(database, settings, clock, LESSON_ONE)
    return {received.rcpt_tos[0]: received for received in smtpd.messages}


def suppressed(database: Database) -> set[str]:
    with database.read() as session:
        return set(session.scalars(select(Suppression.email)))


def multipart(body: bytes, boundary: bytes = b"b") -> bytes:
    return (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary="
        + boundary
        + b"\nMessage-ID: <hostile@x.example>\n\n"
        + body
    )


def deep(levels: int) -> bytes:
    opening = b"".join(
        b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1)
        for i in range(levels)
    )
    return multipart(opening, b"b0")


def many_parts(count: int) -> bytes:
    parts = b"".join(b"--b\nContent-Type: text/plain\n\nx\n" for _ in range(count))
    return multipart(parts + b"--b--\n")


UNREADABLE = {
    "8-bit content type",
    "deep nesting",
    "many parts",
    "oversize",
    "truncated MIME",
    "binary garbage",
    "null file",
    "NUL bytes",
}


def bad_tag_of(address: str) -> str:
    """The same VERP address with one hex digit of its tag changed."""
    found = VERP.fullmatch(address)
    assert found
    tag = found[2]
    return f"bounces+{found[1]}-{'0' if tag[0] != '0' else '1'}{tag[1:]}@northside-physio.example"


def forged_kinds(alan: ReceivedMessage) -> dict[str, bytes]:
    """Every kind of hostile mail, each aimed at Alan where it claims anything."""
    found = VERP.fullmatch(alan.mail_from)
    assert found
    delivery_id, tag = found[1], found[2]
    bad_tag = (
        f"bounces+{delivery_id}-{'0' if tag[0] != '0' else '1'}{tag[1:]}@northside-physio.example"
    )
    genuine_hard = dsn(alan.mail_from, alan.message)
    never_sent = EmailMessage()
    never_sent["From"], never_sent["To"] = "course@northside-physio.example", ALAN
    never_sent["Message-ID"] = "<never-sent-by-us@northside-physio.example>"
    never_sent.set_content("Not ours.")
    someone_else = EmailMessage()
    someone_else["From"], someone_else["To"] = "course@northside-physio.example", ALAN
    someone_else["Return-Path"] = (
        f"<bounces+{int(delivery_id) + 999}-{tag}@northside-physio.example>"
    )
    someone_else["Message-ID"] = "<made-up@northside-physio.example>"
    someone_else.set_content("Forged.")
    return {
        "8-bit Message-ID": b"Message-ID: <\xff\xfe@x>\n"
        + genuine_hard.replace(b"Message-ID:", b"X-Old-ID:", 1).replace(
            alan.mail_from.encode(), bad_tag.encode()
        ),
        "8-bit everywhere": dsn(bad_tag, alan.message).replace(
            b"Subject: ", b"Subject: \xc3\x28\xff "
        ),
        "8-bit content type": b"Content-Type: multipart/\xffreport; boundary=b\n\n--b\n--b--\n",
        "deep nesting": deep(5000),
        "many parts": many_parts(20_000),
        "oversize": b"Subject: big\n\n" + b"x" * 6_000_000,
        "truncated MIME": genuine_hard[: len(genuine_hard) // 2],
        "bogus charset": dsn(bad_tag, alan.message)
        .replace(b"Undelivered Mail", b"=?x-no-such-charset?q?Undelivered?= Mail")
        .replace(b'charset="us-ascii"', b'charset="x-no-such-charset"'),
        "binary garbage": bytes(range(256)) * 40,
        "null file": b"",
        "NUL bytes": b"\x00" * 1000,
        "headers only": b"From: x@example.net\nMessage-ID: <headers-only@x>\nSubject: hi\n",
        "forged VERP, hard bounce": dsn(bad_tag, alan.message),
        "other delivery's VERP": dsn(
            f"bounces+{int(delivery_id) + 1}-{tag}@northside-physio.example", alan.message
        ),
        "DSN for a Message-ID we never sent": dsn(BOUNCES, never_sent, headers_only=True),
        "5.x.x for someone else, forged": dsn(BOUNCES, someone_else),
        "forged complaint": arf(bad_tag, alan.message),
        "NUL in the original's Message-ID": dsn(BOUNCES, never_sent, headers_only=True).replace(
            b"<never-sent", b"<\x00never-sent"
        ),
    }


def test_a_hostile_mailbox_leaves_the_genuine_bounces_applied(
    synced, settings, clock, smtpd, cli, tmp_path
):
    received = lessons_for_three(synced, settings, clock, smtpd)
    hostile = forged_kinds(received[ALAN])
    genuine = [
        dsn(received[ADA].mail_from, received[ADA].message),
        dsn(BOUNCES, received[GRACE].message, headers_only=True),  # found by its Message-ID
    ]
    folder = tmp_path / "Maildir"
    box = mailbox.Maildir(folder, create=True)
    kinds = list(hostile.values())
    for data in [*kinds[:6], genuine[0], *kinds[6:], genuine[1]]:
        box.add(data)

    result = cli("bounces", "process", str(folder))
    assert result.code == 0, result.err
    assert f"read {len(hostile) + 2} message(s): 2 hard bounce(s)" in result.out, result.out
    assert "2 address(es) suppressed" in result.out
    assert suppressed(synced) == {ADA, GRACE}
    assert (
        f"skipped 1 not a bounce, 7 bad signature, 2 unknown delivery, 0 already processed, "
        f"{len(UNREADABLE)} quarantined" in result.out
    ), result.out
    assert len(os.listdir(folder / "quarantine")) == len(UNREADABLE)
    assert stat.S_IMODE((folder / "quarantine").stat().st_mode) == 0o700
    assert list((folder / "new").iterdir()) == []

    again = cli("bounces", "process", str(folder))
    assert again.code == 0 and "read 0 message(s)" in again.out, again.out
    tick(synced, settings, clock, datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    assert [m.rcpt_tos for m in smtpd.messages[3:]] == [(ALAN,)]


def test_the_same_mailbox_as_mbox_skips_and_counts(synced, settings, clock, smtpd, cli, tmp_path):
    received = lessons_for_three(synced, settings, clock, smtpd)
    hostile = forged_kinds(received[ALAN])
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for data in [*hostile.values(), dsn(received[ADA].mail_from, received[ADA].message)]:
        box.add(data)
    box.flush()
    before = path.read_bytes()

    result = cli("bounces", "process", str(path))
    assert result.code == 0, result.err
    assert "1 hard bounce(s)" in result.out and " 0 quarantined" not in result.out, result.out
    assert suppressed(synced) == {ADA}
    assert path.read_bytes() == before
    again = cli("bounces", "process", str(path))
    assert again.code == 0 and "0 hard bounce(s)" in again.out and "0 quarantined" in again.out


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"Message-ID: <\xff@x>\nContent-Type: text/plain\n\nhi\n", None),
        (deep(5000), "MIME parts"),
        (deep(30), "nested deeper"),
        (many_parts(500), "MIME parts"),
        (b"x" * 5_000_001, "larger than"),
        (b"", "empty"),
        (multipart(b"--b\nContent-Type: text/plain\n\ncut here"), "broken MIME"),
    ],
)
def test_each_limit_has_a_reason(data, reason):
    if reason is None:
        read = read_message(data)
        assert read.report is None and read.key.startswith("sha256:")
        return
    with pytest.raises(UnreadableReport, match=reason):
        read_message(data)


def test_a_database_that_is_down_stops_the_run_and_says_so(
    synced, settings, clock, smtpd, tmp_path, monkeypatch
):
    received = lessons_for_three(synced, settings, clock, smtpd)
    folder = tmp_path / "Maildir"
    mailbox.Maildir(folder, create=True).add(dsn(received[ADA].mail_from, received[ADA].message))
    real = synced.transaction
    calls = []

    def failing():
        calls.append(1)
        if len(calls) > 1:
            raise OperationalError("BEGIN", {}, Exception("disk I/O error"))
        return real()

    monkeypatch.setattr(synced, "transaction", failing)
    with pytest.raises(BounceRunStopped, match="not at fault"):
        process_mailbox(synced, folder, clock.now(), settings)
    assert len(os.listdir(folder / "new")) == 1
    assert not (folder / "quarantine").exists()


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(max_size=40))
        elif data:
            del data[at : at + draw(st.integers(1, 200))]
    return bytes(data)


def test_arbitrary_and_mutated_bytes_never_raise_and_suppress_only_the_genuine(
    synced, settings, clock, smtpd, tmp_path
):
    received = lessons_for_three(synced, settings, clock, smtpd)
    alan = received[ALAN]
    bad_tag = bad_tag_of(alan.mail_from)
    # Alan's own Message-ID is a secret of his mailbox (it names his delivery, by design): the
    # forgeries carry a made-up one. Ada's genuine bounce, mutated, may still suppress Ada alone.
    secret = str(alan.message["Message-ID"]).encode()
    forged = [dsn(bad_tag, alan.message), arf(bad_tag, alan.message), *forged_kinds(alan).values()]
    seeds = [seed.replace(secret, b"<made-up@x.example>") for seed in forged if len(seed) < 100_000]
    seeds.append(dsn(received[ADA].mail_from, received[ADA].message))
    runs = iter(range(10**6))

    @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=2000), mutated(seeds)))
    def check(data: bytes) -> None:
        folder = tmp_path / f"box{next(runs)}"
        mailbox.Maildir(folder, create=True).add(data)
        result = process_mailbox(synced, folder, clock.now(), settings)
        assert result.read == 1
        assert suppressed(synced) <= {ADA}

    check()


@pytest.mark.parametrize(
    "hostile",
    [b"Message-ID: <\xff@x>\nSubject: x\n\nhi\n", deep(5000)],
    ids=["8-bit Message-ID", "nested 5000 deep"],
)
def test_the_two_crashes_of_the_finding_no_longer_stop_the_run(
    synced, settings, clock, smtpd, cli, tmp_path, hostile
):
    """On 851b30a these exited 1 (AttributeError: 'Header' object has no attribute 'strip';
    RecursionError), and the genuine hard bounce beside them was not applied."""
    received = lessons_for_three(synced, settings, clock, smtpd)
    folder = tmp_path / "Maildir"
    box = mailbox.Maildir(folder, create=True)
    box.add(hostile)
    box.add(dsn(received[ADA].mail_from, received[ADA].message))
    result = cli("bounces", "process", str(folder))
    assert result.code == 0, result.err
    assert "1 hard bounce(s)" in result.out
    assert suppressed(synced) == {ADA}
