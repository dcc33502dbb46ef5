"""Lessons for an audience, on the real ledger (SQLite, and PostgreSQL when its URL is given) and a
real SMTP server: someone outside a lesson's audience skips it without losing a week, and what is
owed follows their field values as they change. Toronto springs forward on 14 March 2027, between
lesson 3 and the lesson skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fieldcourse import field_course
from sqlalchemy import select

from dripcourse.app import custom_fields, subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Lesson, Subscriber

pytestmark = pytest.mark.both_databases

SIGN_UP = datetime(2027, 2, 22, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in Toronto
# 08:00 in Toronto each Tuesday: 13:00 UTC in winter time, 12:00 UTC from 14 March.
LESSON_DAYS = [
    datetime(2027, 2, 23, 13, 0, tzinfo=UTC),
    datetime(2027, 3, 2, 13, 0, tzinfo=UTC),
    datetime(2027, 3, 9, 13, 0, tzinfo=UTC),
    datetime(2027, 3, 16, 12, 0, tzinfo=UTC),
    datetime(2027, 3, 23, 12, 0, tzinfo=UTC),
]
ANN, BOB = "ann@example.com", "bob@example.com"


@pytest.fixture
def courses_dir(tmp_path: Path) -> Path:
    return field_course(tmp_path / "emails")


@pytest.fixture
def course(database: Database, courses_dir: Path) -> Database:
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, SIGN_UP)
    with database.transaction() as session:
        for email, level in ((ANN, "returning"), (BOB, None)):
            subscriptions.subscribe(
                session,
                email=email,
                course_slug="runners",
                timezone="America/Toronto",
                confirmed=True,
                now=SIGN_UP,
                fields={"level": level, "club": "<b>Tom & Jerry's</b>"},
            )
    return database


def tick(database: Database, settings: Settings, at: datetime) -> list[tuple[str, int | None]]:
    sent = []
    dispatcher = Dispatcher(
        database, settings, load_backend(settings.email_backend), FixedClock(at)
    )
    dispatcher.run_pass(on_outcome=lambda outcome: sent.append((outcome.email, outcome.number)))
    return sorted(sent)


def subjects(smtpd: CapturingSMTPServer, email: str) -> list[str]:
    return [str(m.message["Subject"]) for m in smtpd.messages if email in m.rcpt_tos]


def test_outside_the_audience_the_next_lesson_goes_on_the_skipped_ones_day(
    course: Database, settings: Settings, smtpd: CapturingSMTPServer
) -> None:
    for day in LESSON_DAYS[:3]:
        assert tick(course, settings, day) == [(ANN, n := LESSON_DAYS.index(day) + 1), (BOB, n)]
    # A minute early after the change to summer time: nothing (08:00 EDT is 12:00 UTC).
    assert tick(course, settings, datetime(2027, 3, 16, 11, 59, tzinfo=UTC)) == []
    # Lesson 4 is for returning runners: Ann has it; Bob has lesson 5 in its place, that morning.
    assert tick(course, settings, LESSON_DAYS[3]) == [(ANN, 4), (BOB, 5)]
    # And the weeks go on from there: nobody lost one, nobody got two.
    assert tick(course, settings, LESSON_DAYS[4]) == [(ANN, 5), (BOB, 6)]
    assert subjects(smtpd, BOB)[3] == "Lesson 5: Hips, your running engine"
    assert "Lesson 4: Looking after your knees" not in subjects(smtpd, BOB)
    with course.read() as session:
        # No delivery row is made for the lesson skipped.
        knees = session.scalars(
            select(Subscriber.email)
            .join(Enrollment)
            .join(Delivery)
            .join(Lesson, Delivery.lesson_id == Lesson.id)
            .where(Lesson.key == "knees")
        ).all()
    assert knees == [ANN]


def test_what_is_owed_follows_the_values_as_they_change(
    course: Database, settings: Settings, smtpd: CapturingSMTPServer
) -> None:
    for day in LESSON_DAYS[:3]:
        tick(course, settings, day)
    with course.transaction() as session:
        ids = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
        custom_fields.change_fields(session, ids[BOB], "runners", {"level": "returning"}, SIGN_UP)
        # An empty value removes Ann's: the default (beginner) applies to her again.
        custom_fields.change_fields(session, ids[ANN], "runners", {"level": ""}, SIGN_UP)
    assert tick(course, settings, LESSON_DAYS[3]) == [(ANN, 5), (BOB, 4)]
    with course.read() as session:
        stored = dict(
            session.execute(select(Subscriber.email, Enrollment.fields).join(Enrollment)).all()
        )
    assert stored[ANN] == {"club": "<b>Tom & Jerry's</b>"}
    assert stored[BOB] == {"level": "returning", "club": "<b>Tom & Jerry's</b>"}


def test_the_lesson_that_reads_the_fields_arrives_with_them_escaped(
    course: Database, settings: Settings, smtpd: CapturingSMTPServer
) -> None:
    tick(course, settings, LESSON_DAYS[0])
    tick(course, settings, LESSON_DAYS[1])
    [ann_2] = [m.message for m in smtpd.messages if ANN in m.rcpt_tos][1:]
    [bob_2] = [m.message for m in smtpd.messages if BOB in m.rcpt_tos][1:]
    assert str(ann_2["Subject"]) == "Lesson 2: Ankles for returning runners"
    assert str(bob_2["Subject"]) == "Lesson 2: Ankles for beginner runners"  # the default
    text = ann_2.get_body(("plain",)).get_content()
    html = ann_2.get_body(("html",)).get_content()
    assert "Say hello to everyone at <b>Tom & Jerry's</b>." in " ".join(text.split())
    assert "Say hello to everyone at &lt;b&gt;Tom &amp; Jerry's&lt;/b&gt;." in " ".join(
        html.split()
    )
    assert "<b>Tom" not in html


def test_a_lesson_added_for_an_audience_reopens_only_those_it_is_for(
    course: Database, settings: Settings, courses_dir: Path
) -> None:
    for week in range(10):
        tick(course, settings, LESSON_DAYS[0] + timedelta(days=7 * week))
    with course.read() as session:
        assert set(session.scalars(select(Enrollment.status))) == {"completed"}
    extra = courses_dir / "runners" / "11-race-day.md"
    extra.write_text(
        '+++\nsubject = "Lesson 11: Race day"\ntitle = "Race day"\n'
        'audience = { level = ["returning"] }\n+++\n\nHi {{ subscriber.first_name }}, '
        "this one is about the day itself.\n",
        encoding="utf-8",
    )
    synced_at = LESSON_DAYS[0] + timedelta(days=70)
    with course.transaction() as session:
        for source in load_sources(courses_dir):
            report = sync_course(session, source, synced_at)
    assert report.reopened == 1
    with course.read() as session:
        statuses = dict(
            session.execute(select(Subscriber.email, Enrollment.status).join(Enrollment)).all()
        )
    assert statuses == {ANN: "active", BOB: "completed"}
