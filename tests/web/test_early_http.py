"""'Can't wait? Get the next lesson now', as a reader uses it: the link in a lesson that arrived
through a real SMTP server, a page whose GET changes nothing, a POST that makes the next lesson
due now, once, and the rhythm continuing from the early lesson across Toronto's spring DST
change (2027-03-14). SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from strength_courses import run_passes, write_strength_courses

from dripcourse.app import subscriptions
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import (
    AuditEntry,
    Delivery,
    Enrollment,
    Subscriber,
    SuppressionReason,
)
from dripcourse.store.queries import suppress
from dripcourse.web.app import create_app

pytestmark = pytest.mark.both_databases

ADA = ("ada@example.com", "Ada Lovelace", "America/Toronto")
BRUNO = ("bruno@example.com", "Bruno Schulz", "America/Toronto")
SIGN_UP = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
EARLY = datetime(2027, 3, 11, 15, 0, tzinfo=UTC)
"""A Thursday afternoon, two days after lesson 2 (Tuesday 9 March, 08:00 EST)."""


@pytest.fixture
def strength(database: Database, courses_dir: Path, clock: FixedClock) -> Database:
    write_strength_courses(courses_dir)
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
        for email, name, zone in (ADA, BRUNO):
            subscriptions.subscribe(
                session,
                email=email,
                course_slug="strength-phase-1",
                name=name,
                timezone=zone,
                confirmed=True,
                now=SIGN_UP,
            )
    return database


@pytest.fixture
def wakes() -> list[datetime]:
    return []


@pytest.fixture
def client(strength, settings, clock, wakes) -> TestClient:
    return TestClient(create_app(settings, strength, clock, wake=lambda: wakes.append(clock.now())))


def run_until(database: Database, settings: Settings, clock: FixedClock, end: datetime) -> None:
    """Dispatcher passes every half hour from the clock's time up to `end`."""
    run_passes(database, settings, clock, end)


def lessons_of(smtpd: CapturingSMTPServer, email: str) -> list[EmailMessage]:
    return [m.message for m in smtpd.messages if m.rcpt_tos == (email,)]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def early_path(message: EmailMessage) -> str:
    found = re.findall(r"https://courses\.example\.org(/early/\S+)", text_of(message))
    assert len(found) == 1, found
    return str(found[0])


def state(database: Database, email: str) -> tuple[object, ...]:
    """What a click may change: the enrolment's next due time, its deliveries, the audit log."""
    with database.read() as session:
        enrollment = session.scalars(
            select(Enrollment).join(Subscriber).where(Subscriber.email == email)
        ).one()
        deliveries = session.scalar(
            select(func.count()).where(Delivery.enrollment_id == enrollment.id)
        )
        audit = session.scalar(select(func.count()).select_from(AuditEntry))
        return (enrollment.status, enrollment.next_due_at, deliveries, audit)


def sent_times(database: Database, email: str) -> list[datetime]:
    with database.read() as session:
        return list(
            session.scalars(
                select(Delivery.sent_at)
                .join(Enrollment)
                .join(Subscriber)
                .where(Subscriber.email == email, Delivery.sent_at.is_not(None))
                .order_by(Delivery.sent_at)
            )
        )


def test_an_early_lesson_once_then_the_rhythm_counts_from_it(
    strength, settings, clock, smtpd, client, wakes
):
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 9, 14, 0, tzinfo=UTC))
    lesson_2 = lessons_of(smtpd, ADA[0])[1]
    assert str(lesson_2["Subject"]) == "Phase 1, lesson 2: The box squat"
    link = early_path(lesson_2)

    clock.set(EARLY)
    before = state(strength, ADA[0])
    page = client.get(link)
    assert page.status_code == 200
    assert '<form method="post">' in page.text and "Send me the next lesson now" in page.text
    assert state(strength, ADA[0]) == before, "a GET (a mail scanner) changes nothing"

    asked = client.post(link)
    assert asked.status_code == 200 and "on its way" in asked.text
    assert "The band row" in asked.text
    assert wakes == [EARLY]
    status, next_due_at, _deliveries, audit = state(strength, ADA[0])
    assert (status, next_due_at, audit) == ("active", EARLY, before[3] + 1)
    with strength.read() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None
        assert (entry.action, entry.target) == ("early lesson asked", ADA[0])
        assert entry.detail == "strength-phase-1: lesson row asked for after lesson squat"

    again = client.post(link)
    assert again.status_code == 200 and "Already on its way" in again.text
    assert state(strength, ADA[0])[3] == before[3] + 1, "asked twice: one audit entry"

    run_until(strength, settings, clock, EARLY + timedelta(minutes=30))
    subjects = [str(m["Subject"]) for m in lessons_of(smtpd, ADA[0])]
    assert subjects[2:] == ["Phase 1, lesson 3: The band row"], "one lesson, however often asked"

    old = client.post(link)
    assert old.status_code == 200 and "Already sent" in old.text

    run_until(strength, settings, clock, datetime(2027, 3, 19, 0, 0, tzinfo=UTC))
    assert sent_times(strength, ADA[0]) == [
        datetime(2027, 3, 2, 13, 0, tzinfo=UTC),
        datetime(2027, 3, 9, 13, 0, tzinfo=UTC),
        EARLY,  # the early lesson 3, on the Thursday
        # Lesson 4: one cadence after the early one, Thursday 18 March at 08:00 EDT (12:00 UTC).
        datetime(2027, 3, 18, 12, 0, tzinfo=UTC),
    ]
    last = lessons_of(smtpd, ADA[0])[3]
    assert "next lesson now" not in text_of(last), "the last lesson has nothing to ask for"
    # Bruno did not ask: his lessons keep their Tuesdays.
    assert sent_times(strength, BRUNO[0])[2] == datetime(2027, 3, 16, 12, 0, tzinfo=UTC)


def test_a_forged_or_tampered_link_changes_nothing(strength, settings, clock, smtpd, client):
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 2, 14, 0, tzinfo=UTC))
    link = early_path(lessons_of(smtpd, ADA[0])[0])
    before = state(strength, ADA[0])
    token = link.rpartition("/")[2]
    body, _, signature = token.rpartition(".")
    forged = [
        f"/early/{body.replace('e', 'e9', 1)}.{signature}",  # another enrolment, same signature
        f"/early/{body}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        "/early/e1-l1",
        "/early/" + "x" * 5000,
    ]
    unsubscribe = re.findall(r"/unsubscribe/(\S+)", text_of(lessons_of(smtpd, ADA[0])[0]))[0]
    forged.append(f"/early/{unsubscribe}")  # a valid token of another purpose
    for path in forged:
        for answer in (client.get(path), client.post(path)):
            assert answer.status_code == 400, (path, answer.status_code)
            assert "not valid" in answer.text
    assert state(strength, ADA[0]) == before


def test_a_paused_or_unsubscribed_enrolment_gets_a_clear_page(
    strength, settings, clock, smtpd, client
):
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 2, 14, 0, tzinfo=UTC))
    ada, bruno = (early_path(lessons_of(smtpd, email)[0]) for email in (ADA[0], BRUNO[0]))
    with strength.transaction() as session:
        subscriptions.pause(session, ADA[0], clock.now(), "strength-phase-1")
        subscriptions.unsubscribe(session, BRUNO[0], clock.now(), "strength-phase-1")
    before = state(strength, ADA[0]), state(strength, BRUNO[0])
    paused = client.post(ada)
    assert paused.status_code == 200 and "is paused, so no lesson was sent" in paused.text
    left = client.post(bruno)
    assert left.status_code == 200 and "has ended: you unsubscribed" in left.text
    assert (state(strength, ADA[0]), state(strength, BRUNO[0])) == before


def test_an_address_that_bounced_or_complained_is_not_promised_a_lesson(
    strength, settings, clock, smtpd, client, wakes
):
    """A suppressed address gets no lesson (the ledger holds it): the page must not say one is on
    its way, and the press changes nothing."""
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 9, 14, 0, tzinfo=UTC))
    link = early_path(lessons_of(smtpd, ADA[0])[1])
    with strength.transaction() as session:
        suppress(session, ADA[0], SuppressionReason.COMPLAINT, clock.now(), "marked as spam")
    clock.set(EARLY)
    before = state(strength, ADA[0])

    asked = client.post(link)

    assert asked.status_code == 200
    assert "on its way" not in asked.text
    assert "no longer sends to your address, so no lesson was sent" in asked.text
    assert state(strength, ADA[0]) == before and wakes == []
