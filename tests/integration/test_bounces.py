"""Bounces and complaints come back to the VERP envelope sender and stop the mail: a real SMTP server
records the envelope, and real RFC 3464 / RFC 5965 reports sit in real Maildir and mbox files."""

from __future__ import annotations

import mailbox
import re
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer, ReceivedMessage
from dripcourse.mail.verp import BounceAddresses
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Subscriber, Suppression

ADA = "ada@example.com"
LESSON_ONE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in Toronto
LESSON_TWO = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 08:00 in Toronto, after the DST change
VERP = re.compile(r"bounces\+(\d+)-([0-9a-f]{8})@northside-physio\.example")


def first_lesson(
    database: Database, settings: Settings, clock: FixedClock, smtpd: CapturingSMTPServer
) -> ReceivedMessage:
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=ADA,
            course_slug="runners",
            name="Ada Lovelace",
            timezone="America/Toronto",
            confirmed=True,
            now=clock.now(),
        )
    tick(database, settings, clock, LESSON_ONE)
    [received] = smtpd.messages
    return received


def tick(database: Database, settings: Settings, clock: FixedClock, at: datetime) -> None:
    clock.set(at)
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def dsn(
    to: str,
    original: EmailMessage | None,
    status: str = "5.1.1",
    action: str = "failed",
    headers_only: bool = False,
) -> bytes:
    """A delivery status notification as RFC 3464 has it: a human part, the machine-readable
    per-message and per-recipient fields, and the returned original (or its headers)."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(LESSON_ONE)
    report["Message-ID"] = make_msgid(domain="mx.example.com")
    report.attach(MIMEText(f"Your message to {ADA} could not be delivered.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.com"
    per_message["Arrival-Date"] = format_datetime(LESSON_ONE)
    per_recipient["Final-Recipient"] = f"rfc822; {ADA}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = f"smtp; 550 {status} mailbox unavailable"
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    if original is not None and headers_only:
        headers = "".join(f"{name}: {value}\n" for name, value in original.items())
        report.attach(MIMEText(headers, "rfc822-headers"))
    elif original is not None:
        report.attach(MIMEMessage(original))
    return report.as_bytes()


def arf(mail_from: str, original: EmailMessage) -> bytes:
    """A complaint as RFC 5965 has it: a human part, the feedback report, the original."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "Feedback Loop <fbl@isp.example.net>"
    report["To"] = "abuse@northside-physio.example"
    report["Subject"] = "Email Feedback Report for IP 192.0.2.1"
    report["Message-ID"] = make_msgid(domain="isp.example.net")
    report.attach(MIMEText("This is an email abuse report for an email message received.\n"))
    fields = Message()
    fields["Feedback-Type"] = "abuse"
    fields["User-Agent"] = "SomeGenerator/1.0"
    fields["Version"] = "1"
    fields["Original-Mail-From"] = f"<{mail_from}>"
    fields["Original-Rcpt-To"] = f"<{ADA}>"
    fields["Arrival-Date"] = format_datetime(LESSON_ONE)
    report.attach(MIMEMessage(fields, "feedback-report"))
    report.attach(MIMEMessage(original))
    return report.as_bytes()


def maildir(tmp_path: Path, *messages: bytes) -> Path:
    folder = tmp_path / "Maildir"
    box = mailbox.Maildir(folder, create=True)
    for data in messages:
        box.add(data)
    return folder


def suppression(database: Database) -> Suppression | None:
    with database.read() as session:
        return session.scalar(select(Suppression).where(Suppression.email == ADA))


def test_the_envelope_sender_names_the_delivery_and_from_stays_the_course(
    synced, settings, clock, smtpd
):
    received = first_lesson(synced, settings, clock, smtpd)
    found = VERP.fullmatch(received.mail_from)
    assert found, received.mail_from
    assert received.message["From"].addresses[0].addr_spec == "course@northside-physio.example"
    assert "Return-Path" not in received.message
    with synced.read() as session:
        delivery = session.scalars(
            select(Delivery).where(Delivery.message_id == received.message["Message-ID"])
        ).one()
    assert int(found[1]) == delivery.id
    assert BounceAddresses("test-secret-key").read(received.mail_from) == delivery.id
    assert BounceAddresses("another-key").read(received.mail_from) is None


def test_a_configured_bounce_address_is_the_base(synced, settings, clock, smtpd):
    settings = settings.with_overrides(bounce_address="returns@mail.example.org")
    received = first_lesson(synced, settings, clock, smtpd)
    assert re.fullmatch(r"returns\+\d+-[0-9a-f]{8}@mail\.example\.org", received.mail_from)


def test_a_hard_bounce_suppresses_and_no_lesson_follows(
    synced, settings, clock, smtpd, cli, tmp_path
):
    received = first_lesson(synced, settings, clock, smtpd)
    folder = maildir(tmp_path, dsn(received.mail_from, received.message))

    result = cli("bounces", "process", str(folder))
    assert result.code == 0, result.err
    assert "read 1 message(s): 1 hard bounce(s)" in result.out
    assert "1 address(es) suppressed" in result.out
    found = suppression(synced)
    assert found is not None and found.reason == "hard_bounce" and "5.1.1" in found.detail
    with synced.read() as session:
        assert session.scalars(select(Enrollment.status)).all() == ["unsubscribed"]
    assert list((folder / "new").iterdir()) == []
    assert [p.name.endswith(":2,S") for p in (folder / "cur").iterdir()] == [True]

    tick(synced, settings, clock, LESSON_TWO)
    tick(synced, settings, clock, datetime(2026, 4, 30, 12, 0, tzinfo=UTC))
    assert len(smtpd.messages) == 1


def test_a_bounce_without_verp_is_found_by_the_original_message_id(
    synced, settings, clock, smtpd, cli, tmp_path
):
    received = first_lesson(synced, settings, clock, smtpd)
    report = dsn("bounces@northside-physio.example", received.message, headers_only=True)
    result = cli("bounces", "process", str(maildir(tmp_path, report)))
    assert "1 hard bounce(s)" in result.out, result.out
    assert suppression(synced) is not None


def test_forged_verp_addresses_and_other_mail_are_skipped(
    synced, settings, clock, smtpd, cli, tmp_path
):
    received = first_lesson(synced, settings, clock, smtpd)
    found = VERP.fullmatch(received.mail_from)
    assert found
    delivery_id, tag = found[1], found[2]
    altered_tag = (
        f"bounces+{delivery_id}-{tag[:-1]}{'0' if tag[-1] != '0' else '1'}@northside-physio.example"
    )
    other_delivery = f"bounces+{int(delivery_id) + 1}-{tag}@northside-physio.example"
    ordinary = EmailMessage()
    ordinary["From"], ordinary["To"], ordinary["Subject"] = (
        ADA,
        "bounces@northside-physio.example",
        "hi",
    )
    ordinary.set_content("Just saying hello.")
    folder = maildir(
        tmp_path,
        dsn(altered_tag, received.message),
        dsn(other_delivery, received.message),
        ordinary.as_bytes(),
    )

    result = cli("bounces", "process", str(folder))
    assert result.code == 0, result.err
    assert "0 hard bounce(s)" in result.out
    assert "skipped 1 not a bounce, 2 bad signature" in result.out
    assert suppression(synced) is None
    tick(synced, settings, clock, LESSON_TWO)
    assert len(smtpd.messages) == 2


def test_soft_bounces_count_once_each_and_suppress_at_the_limit(
    synced, settings, clock, smtpd, cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("DRIPCOURSE_SOFT_BOUNCE_LIMIT", "3")
    received = first_lesson(synced, settings, clock, smtpd)
    soft = [dsn(received.mail_from, received.message, "4.2.2", "delayed") for _ in range(2)]
    folder = maildir(tmp_path, *soft)

    assert (
        "2 soft bounce(s), 0 complaint(s), 0 address(es)"
        in cli("bounces", "process", str(folder)).out
    )
    assert "read 0 message(s)" in cli("bounces", "process", str(folder)).out
    # The same reports in an mbox file (left as it is): known by their Message-IDs.
    mbox_path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(mbox_path)
    for data in soft:
        box.add(data)
    box.flush()
    again = cli("bounces", "process", str(mbox_path)).out
    assert "0 soft bounce(s)" in again and "2 already processed" in again
    with synced.read() as session:
        assert session.scalars(select(Subscriber.soft_bounces)).one() == 2
    assert suppression(synced) is None

    third = dsn(received.mail_from, received.message, "4.4.1", "failed")
    mailbox.Maildir(folder).add(third)
    assert (
        "1 soft bounce(s), 0 complaint(s), 1 address(es) suppressed"
        in cli("bounces", "process", str(folder)).out
    )
    found = suppression(synced)
    assert found is not None and found.reason == "hard_bounce" and "3 soft bounces" in found.detail
    tick(synced, settings, clock, LESSON_TWO)
    assert len(smtpd.messages) == 1


def test_a_complaint_suppresses(synced, settings, clock, smtpd, cli, tmp_path):
    received = first_lesson(synced, settings, clock, smtpd)
    mbox_path = tmp_path / "complaints.mbox"
    box = mailbox.mbox(mbox_path)
    box.add(arf(received.mail_from, received.message))
    box.flush()

    result = cli("bounces", "process", str(mbox_path))
    assert "1 complaint(s), 1 address(es) suppressed" in result.out, result.out
    found = suppression(synced)
    assert found is not None and found.reason == "complaint"
    tick(synced, settings, clock, LESSON_TWO)
    assert len(smtpd.messages) == 1


@pytest.mark.parametrize("make", ["missing", "folder", "text"])
def test_a_bad_path_is_one_line_and_exit_2(database, cli, tmp_path, make):
    path = tmp_path / "box"
    if make == "folder":
        path.mkdir()
    elif make == "text":
        path.write_text("not mail\n")
    result = cli("bounces", "process", str(path))
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("dripcourse: error:")
