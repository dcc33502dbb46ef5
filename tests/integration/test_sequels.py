"""The end of a course, through a real SMTP server and a real database (SQLite, and PostgreSQL
when its URL is given): the completion email at the slot the next lesson would have had, then
the next course, with the consent carried over; dates cross Toronto's spring DST change
(2027-03-14)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from strength_courses import lesson_text, run_passes, write_strength_courses

from dripcourse.app import subscriptions, webhooks
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import (
    AuditEntry,
    Course,
    Delivery,
    DeliveryKind,
    Enrollment,
    LessonTally,
    Subscriber,
)
from dripcourse.store.webhook_models import WebhookMessage

pytestmark = pytest.mark.both_databases

ADA = ("ada@example.com", "Ada Lovelace", "America/Toronto")
BRUNO = ("bruno@example.com", "Bruno Schulz", "America/Toronto")
CHIARA = ("chiara@example.com", "Chiara Rossi", "America/Toronto")
# A Monday: lesson 1 goes on Tuesday 2 March 2027 at 08:00 in Toronto (13:00 UTC, EST).
SIGN_UP = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def strength(database: Database, courses_dir: Path, clock: FixedClock) -> Database:
    write_strength_courses(courses_dir)
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    return database


def enrol(database: Database, person: tuple[str, str, str], slug: str, at: datetime) -> None:
    email, name, zone = person
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug=slug,
            name=name,
            timezone=zone,
            confirmed=True,
            now=at,
        )


def run_until(
    database: Database, settings: Settings, clock: FixedClock, end: datetime
) -> list[tuple[datetime, str, str]]:
    """Dispatcher passes every half hour up to `end`: (when it went, to whom, subject)."""
    arrived: list[tuple[datetime, str, str]] = []
    run_passes(
        database,
        settings,
        clock,
        end,
        on_outcome=lambda sent: arrived.append((clock.now(), sent.email, sent.status)),
    )
    return arrived


def subjects_with_dates(smtpd: CapturingSMTPServer, email: str) -> list[tuple[str, str]]:
    return [
        (str(m.message["Date"]), str(m.message["Subject"]))
        for m in smtpd.messages
        if m.rcpt_tos == (email,)
    ]


def sent_at(database: Database, email: str) -> list[tuple[str, str, datetime]]:
    """(course, kind and lesson, sent at) of every message sent to `email`, in order."""
    with database.read() as session:
        rows = session.execute(
            select(Course.slug, Delivery.kind, Delivery.lesson_id, Delivery.sent_at)
            .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
            .join(Course, Enrollment.course_id == Course.id)
            .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
            .where(Subscriber.email == email, Delivery.sent_at.is_not(None))
            .order_by(Delivery.sent_at)
        ).all()
    return [(slug, kind, at) for slug, kind, _lesson, at in rows]


def test_a_completion_email_then_the_next_course_in_its_own_rhythm(
    strength, settings, clock, smtpd
):
    enrol(strength, ADA, "strength-phase-1", SIGN_UP)
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 4, 3, 0, 0, tzinfo=UTC))
    times = [(slug, kind, at) for slug, kind, at in sent_at(strength, ADA[0])]
    assert (
        times
        == [
            ("strength-phase-1", "lesson", datetime(2027, 3, 2, 13, 0, tzinfo=UTC)),  # 08:00 EST
            ("strength-phase-1", "lesson", datetime(2027, 3, 9, 13, 0, tzinfo=UTC)),
            # Toronto springs forward on 14 March: 08:00 is now 12:00 UTC.
            ("strength-phase-1", "lesson", datetime(2027, 3, 16, 12, 0, tzinfo=UTC)),
            ("strength-phase-1", "lesson", datetime(2027, 3, 23, 12, 0, tzinfo=UTC)),
            # The completion email keeps the rhythm: the slot a fifth lesson would have had.
            ("strength-phase-1", "completion", datetime(2027, 3, 30, 12, 0, tzinfo=UTC)),
            # Phase 2 starts the day after, at its own 07:30, then every three days.
            ("strength-phase-2", "lesson", datetime(2027, 3, 31, 11, 30, tzinfo=UTC)),
            ("strength-phase-2", "lesson", datetime(2027, 4, 3, 11, 30, tzinfo=UTC)),
        ][: len(times)]
    )
    assert len(times) == 6  # the run stops before phase 2's second lesson
    subjects = [subject for _date, subject in subjects_with_dates(smtpd, ADA[0])]
    assert subjects[4] == "You finished Strength, phase 1, Ada"
    assert subjects[5] == "Phase 2, lesson 1: The split squat"
    completion = [m.message for m in smtpd.messages if "You finished" in str(m.message["Subject"])]
    text = completion[0].get_body(preferencelist=("plain",)).get_content()
    assert "COURSE COMPLETE" in text and "You have had all 4 lessons." in text
    assert "Get the next lesson now" not in text
    with strength.read() as session:
        old, new = session.scalars(
            select(Enrollment)
            .join(Subscriber)
            .where(Subscriber.email == ADA[0])
            .order_by(Enrollment.id)
        ).all()
        assert (old.status, new.status) == ("completed", "active")
        assert new.source == "next-course"
        # Started when phase 1 finished (its last lesson went out); consent as evidenced before.
        assert new.confirmed_at == datetime(2027, 3, 23, 12, 0, tzinfo=UTC)
        assert (new.signup_ip, new.confirm_ip) == (old.signup_ip, old.confirm_ip)
        entries = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.target == ADA[0])
        ).all()
        assert (
            "enrolled in strength-phase-2 (consent carried over from strength-phase-1)" in entries
        )
        # The tallies count lessons: four of phase 1, one of phase 2; the completion email is none.
        phase_1 = session.scalar(select(Course.id).where(Course.slug == "strength-phase-1"))
        lesson_sent = session.execute(select(LessonTally.lesson_id, LessonTally.sent)).all()
        assert sum(sent for _lesson, sent in lesson_sent) == 5
        del phase_1


def test_suppressed_and_already_enrolled_people_are_not_enrolled_again(
    strength, settings, clock, smtpd
):
    for person in (ADA, BRUNO, CHIARA):
        enrol(strength, person, "strength-phase-1", SIGN_UP)
    # Bruno already had phase 2, and left it: finishing phase 1 does not bring him back.
    enrol(strength, BRUNO, "strength-phase-2", SIGN_UP)
    with strength.transaction() as session:
        subscriptions.unsubscribe(session, BRUNO[0], SIGN_UP, "strength-phase-2")
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 22, 0, 0, tzinfo=UTC))
    # Chiara's last lesson is refused for good (550): her address is suppressed as it finishes.
    smtpd.fail_recipient(CHIARA[0], 550)
    run_until(strength, settings, clock, datetime(2027, 4, 2, 0, 0, tzinfo=UTC))
    with strength.read() as session:
        enrolments = session.execute(
            select(Subscriber.email, Course.slug, Enrollment.status, Enrollment.source)
            .join(Enrollment, Enrollment.subscriber_id == Subscriber.id)
            .join(Course, Enrollment.course_id == Course.id)
            .order_by(Subscriber.email, Course.slug)
        ).all()
    assert [tuple(row) for row in enrolments] == [
        ("ada@example.com", "strength-phase-1", "completed", "cli"),
        ("ada@example.com", "strength-phase-2", "active", "next-course"),
        ("bruno@example.com", "strength-phase-1", "completed", "cli"),
        ("bruno@example.com", "strength-phase-2", "unsubscribed", "cli"),
        ("chiara@example.com", "strength-phase-1", "completed", "cli"),
    ]
    to_bruno = [subject for _d, subject in subjects_with_dates(smtpd, BRUNO[0])]
    assert "Phase 2, lesson 1: The split squat" not in to_bruno
    assert "You finished Strength, phase 1, Bruno" in to_bruno
    # Chiara's completion email is never sent to a suppressed address.
    assert not any("You finished" in s for _d, s in subjects_with_dates(smtpd, CHIARA[0]))


def test_a_next_course_that_is_not_synced_is_skipped(database, courses_dir, settings, clock):
    write_strength_courses(courses_dir)
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            if source.slug != "strength-phase-2":
                report = sync_course(session, source, clock.now())
                if source.slug == "strength-phase-1":
                    assert report.warnings == []  # its folder is there: it may be synced later
    enrol(database, ADA, "strength-phase-1", SIGN_UP)
    clock.set(SIGN_UP)
    run_until(database, settings, clock, datetime(2027, 3, 31, 0, 0, tzinfo=UTC))
    with database.read() as session:
        statuses = session.scalars(select(Enrollment.status)).all()
    assert statuses == ["completed"]


def test_a_course_finished_twice_owes_one_completion_email(
    strength, courses_dir, settings, clock, smtpd
):
    """A lesson added after the finish reopens the enrolment; finishing again owes no second
    completion email (one per enrolment, by the partial unique index) and no second enrolment."""
    enrol(strength, ADA, "strength-phase-1", SIGN_UP)
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 31, 0, 0, tzinfo=UTC))
    (courses_dir / "strength-phase-1" / "05-carry.md").write_text(
        lesson_text("Phase 1, lesson 5: The farmer's carry", "The farmer's carry")
    )
    with strength.transaction() as session:
        [source] = [s for s in load_sources(courses_dir) if s.slug == "strength-phase-1"]
        assert sync_course(session, source, clock.now()).reopened == 1
    run_until(strength, settings, clock, datetime(2027, 4, 12, 0, 0, tzinfo=UTC))
    subjects = [subject for _d, subject in subjects_with_dates(smtpd, ADA[0])]
    assert "Phase 1, lesson 5: The farmer's carry" in subjects
    assert subjects.count("You finished Strength, phase 1, Ada") == 1
    assert subjects.count("Phase 2, lesson 1: The split squat") == 1
    with strength.read() as session:
        completions = session.scalars(
            select(Delivery.status).where(Delivery.kind == DeliveryKind.COMPLETION)
        ).all()
        statuses = session.scalars(select(Enrollment.status).order_by(Enrollment.id)).all()
    assert completions == ["sent"]
    assert statuses == ["completed", "completed"]


def test_a_lesson_added_while_the_completion_email_waits_moves_it_after_the_new_last_lesson(
    strength, courses_dir, settings, clock, smtpd
):
    """Lesson 4 went out, the completion email waits for its slot a week later, and a fifth
    lesson is added meanwhile: the completion email keeps the rhythm after lesson 5 (one send
    later), never the same morning as it."""
    enrol(strength, ADA, "strength-phase-1", SIGN_UP)
    clock.set(SIGN_UP)
    # Lesson 4 on Tuesday 23 March 2027 at 08:00 EDT (12:00 UTC); the completion owed for the 30th.
    run_until(strength, settings, clock, datetime(2027, 3, 24, 0, 0, tzinfo=UTC))
    (courses_dir / "strength-phase-1" / "05-carry.md").write_text(
        lesson_text("Phase 1, lesson 5: The farmer's carry", "The farmer's carry")
    )
    with strength.transaction() as session:
        [source] = [s for s in load_sources(courses_dir) if s.slug == "strength-phase-1"]
        assert sync_course(session, source, clock.now()).reopened == 1

    run_until(strength, settings, clock, datetime(2027, 4, 14, 0, 0, tzinfo=UTC))

    phase_1 = [(k, at) for slug, k, at in sent_at(strength, ADA[0]) if slug == "strength-phase-1"]
    assert phase_1[3:] == [
        ("lesson", datetime(2027, 3, 23, 12, 0, tzinfo=UTC)),
        ("lesson", datetime(2027, 3, 30, 12, 0, tzinfo=UTC)),
        ("completion", datetime(2027, 4, 6, 12, 0, tzinfo=UTC)),
    ]
    subjects = [subject for _d, subject in subjects_with_dates(smtpd, ADA[0])]
    assert subjects.count("You finished Strength, phase 1, Ada") == 1


def test_webhooks_hear_the_finish_then_the_next_courses_enrolment(strength, settings, clock):
    """`enrollment.completed` for phase 1, then `subscriber.created` and `.confirmed` for the
    enrolment in phase 2 that the finish made (nobody signed up for it: the consent carried over)."""
    with socket.socket() as closed:  # nothing listens: the events wait in the outbox, unsent
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks"
    with strength.transaction() as session:
        webhooks.add_endpoint(session, url, [], clock.now())
    enrol(strength, ADA, "strength-phase-1", SIGN_UP)
    clock.set(SIGN_UP)
    run_until(strength, settings, clock, datetime(2027, 3, 31, 0, 0, tzinfo=UTC))
    with strength.read() as session:
        events = [
            (message.event_type, json.loads(message.body)["data"]["course"])
            for message in session.scalars(select(WebhookMessage).order_by(WebhookMessage.id))
            if not message.event_type.startswith("lesson.")
        ]
    assert events == [
        ("subscriber.created", "strength-phase-1"),
        ("subscriber.confirmed", "strength-phase-1"),
        ("enrollment.completed", "strength-phase-1"),
        ("subscriber.created", "strength-phase-2"),
        ("subscriber.confirmed", "strength-phase-2"),
    ]
