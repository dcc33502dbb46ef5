"""The course report counts what really happened: two lessons go out through a real SMTP server that
refuses some addresses, a bounce comes back through the bounce reader, people unsubscribe and click
tracked links through the HTTP app, and each lesson's numbers equal what the server received."""

from __future__ import annotations

import html
import mailbox
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.app.bounces import process_mailbox
from dripcourse.app.report import LessonReport, course_report
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer, ReceivedMessage
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery
from dripcourse.web.app import create_app

pytestmark = pytest.mark.both_databases

PEOPLE = ["ada", "bruno", "chiara", "dmitri", "emma", "farid"]
LESSON_ONE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in Toronto
LESSON_TWO = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 08:00 in Toronto, after the DST change


def address(name: str) -> str:
    return f"{name}@example.com"


@pytest.fixture
def tracked(database: Database, courses_dir: Path, clock: FixedClock) -> Database:
    """The runners course, with click tracking turned on, and six people in it."""
    toml = courses_dir / "runners" / "course.toml"
    toml.write_text(toml.read_text() + "\n[tracking]\nclicks = true\n")
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
        for name in PEOPLE:
            subscriptions.subscribe(
                session,
                email=address(name),
                course_slug="runners",
                name=name.title(),
                timezone="America/Toronto",
                confirmed=True,
                now=clock.now(),
            )
    return database


def tick(database: Database, settings: Settings, clock: FixedClock, at: datetime) -> None:
    clock.set(at)
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def received(smtpd: CapturingSMTPServer, name: str, subject: str) -> ReceivedMessage:
    [found] = [
        message
        for message in smtpd.messages
        if address(name) in message.rcpt_tos and str(message.message["Subject"]) == subject
    ]
    return found


def hard_bounce_of(original: ReceivedMessage) -> bytes:
    """An RFC 3464 report, sent back to the message's VERP envelope sender."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    report["To"] = original.mail_from
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = make_msgid(domain="mx.example.com")
    report.attach(MIMEText("Your message could not be delivered.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.com"
    per_recipient["Final-Recipient"] = f"rfc822; {original.rcpt_tos[0]}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 mailbox unavailable"
    status = MIMEBase("message", "delivery-status")
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    report.attach(MIMEMessage(original.message))
    return report.as_bytes()


def tracked_links(message: ReceivedMessage) -> list[str]:
    part = message.message.get_body(preferencelist=("html",))
    assert part is not None
    hrefs = re.findall(r'<a\s[^>]*?href="([^"]*)"', str(part.get_content()))
    return [html.unescape(href) for href in hrefs if "/c/" in href]


def local(url: str) -> str:
    """The path and query of a link to the app (the test client serves it)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def click(client: TestClient, link: str) -> None:
    answer = client.get(local(link))
    assert answer.status_code == 302, answer.text


def one_click_unsubscribe(client: TestClient, message: ReceivedMessage) -> None:
    [url] = [t for t in re.findall(r"<([^>]+)>", message.message["List-Unsubscribe"]) if "//" in t]
    answer = client.post(local(url), data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.text


def by_number(report: list[LessonReport]) -> dict[int | None, LessonReport]:
    return {row.lesson: row for row in report}


def test_the_report_counts_what_the_server_received_and_what_people_did(
    tracked, settings, clock, smtpd, tmp_path
):
    client = TestClient(create_app(settings, tracked, clock), follow_redirects=False)
    first, second = (lesson.subject for lesson in load_sources(settings.courses_dir)[0].lessons[:2])

    # Lesson 1: dmitri's mailbox does not exist (550 at RCPT), the others get it.
    smtpd.fail_recipient(address("dmitri"))
    tick(tracked, settings, clock, LESSON_ONE)
    # A day later: bruno's message bounces after all, chiara leaves, ada and emma click.
    clock.set(LESSON_ONE + timedelta(days=1))
    folder = tmp_path / "Maildir"
    mailbox.Maildir(folder, create=True).add(hard_bounce_of(received(smtpd, "bruno", first)))
    bounces = process_mailbox(tracked, folder, clock.now(), settings)
    assert bounces.hard == 1
    one_click_unsubscribe(client, received(smtpd, "chiara", first))
    ada_links = tracked_links(received(smtpd, "ada", first))
    assert len(set(ada_links)) >= 2
    for link in [ada_links[0], ada_links[0], ada_links[1]]:  # twice the same, then another
        click(client, link)
    click(client, tracked_links(received(smtpd, "emma", first))[0])

    # Lesson 2: farid's mailbox is gone now too; emma leaves after it, ada clicks again.
    smtpd.fail_recipient(address("farid"))
    tick(tracked, settings, clock, LESSON_TWO)
    clock.set(LESSON_TWO + timedelta(hours=3))
    one_click_unsubscribe(client, received(smtpd, "emma", second))
    click(client, tracked_links(received(smtpd, "ada", second))[0])

    with tracked.read() as session:
        report = by_number(course_report(session, "runners"))
    on_the_server = Counter(str(message.message["Subject"]) for message in smtpd.messages)

    assert report[1].subject == first and report[2].subject == second
    assert report[1].sent == on_the_server[first] == 5  # all but dmitri
    assert report[2].sent == on_the_server[second] == 2  # ada and emma
    assert (report[1].failed, report[2].failed) == (1, 1)  # dmitri, then farid
    assert (report[1].bounced, report[2].bounced) == (1, 0)  # bruno
    # chiara after lesson 1, emma after lesson 2; bruno's bounce ended his course, but he did
    # not choose to leave.
    assert (report[1].unsubscribed, report[2].unsubscribed) == (1, 1)
    assert (report[1].clicked, report[2].clicked) == (2, 1)  # ada and emma; then ada
    for number in range(3, 11):
        row = report[number]
        assert (row.sent, row.failed, row.bounced, row.unsubscribed, row.clicked) == (0, 0, 0, 0, 0)
    assert sum(row.sent for row in report.values()) == len(smtpd.messages)


def test_a_lesson_queued_by_an_operator_counts_like_the_rhythms_own(
    tracked, settings, clock, smtpd
):
    """Extras reach the server like any lesson, so they count under their lesson."""
    from dripcourse.app.lessons import queue_lesson

    tick(tracked, settings, clock, LESSON_ONE)
    with tracked.transaction() as session:
        queued = queue_lesson(session, "runners", "3", LESSON_ONE, to=address("ada"))
    assert queued == 1
    tick(tracked, settings, clock, LESSON_ONE + timedelta(minutes=5))

    with tracked.read() as session:
        report = by_number(course_report(session, "runners"))
        kinds = session.scalars(select(Delivery.kind).where(Delivery.status == "sent")).all()
    on_the_server = Counter(str(message.message["Subject"]) for message in smtpd.messages)
    assert sorted(set(kinds)) == ["extra", "lesson"]
    assert report[3].sent == on_the_server[report[3].subject] == 1
    assert report[1].sent == on_the_server[report[1].subject] == 6


def test_an_unknown_course_is_not_found(tracked):
    from dripcourse.errors import NotFound

    with tracked.read() as session, pytest.raises(NotFound, match="nope"):
        course_report(session, "nope")
