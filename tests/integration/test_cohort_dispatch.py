"""Cohort courses through the dispatcher, a real database (SQLite, and PostgreSQL when its URL is
given) and a real SMTP server: who gets which lesson on which day, across the DST changes of
Toronto (14 March 2027) and London (28 March 2027).

Two copies of the example course start on Monday 1 March 2027, weekly at 08:00: `cohort` lets late
joiners catch up, `cohort-live` starts them at the current lesson. The clock is ticked at each
instant that is 08:00 in one of the two zones, so the Date header of every email says when it
became due.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dripcourse.app import overview, subscriptions
from dripcourse.app.timeline import timeline
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Lesson, Subscriber

pytestmark = pytest.mark.both_databases

COHORT_DATES = [date(2027, 3, 1) + timedelta(weeks=k) for k in range(10)]
"""The cohort's Mondays, lessons 1 to 10: Toronto's DST change falls before lesson 3, London's
before lesson 5."""

TORONTO, LONDON = "America/Toronto", "Europe/London"
EARLY = datetime(2027, 2, 10, 15, 0, tzinfo=UTC)
LATE = datetime(2027, 3, 17, 15, 0, tzinfo=UTC)  # a Wednesday: the cohort had lessons 1 to 3


@pytest.fixture
def cohorts(database: Database, courses_dir: Path, clock: FixedClock) -> Database:
    """The example course twice as a cohort course, one per way of placing late joiners."""
    for slug, mode in (("cohort", "catch_up"), ("cohort-live", "join_in_progress")):
        shutil.copytree(courses_dir / "runners", courses_dir / slug)
        toml = courses_dir / slug / "course.toml"
        text = toml.read_text()
        toml.write_text(
            text.replace(
                "[schedule]\n", f'[schedule]\nstarts_on = 2027-03-01\nlate_joiners = "{mode}"\n'
            )
        )
    clock.set(EARLY - timedelta(days=1))
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    return database


def enrol(database: Database, email: str, zone: str, course: str, at: datetime) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, email=email, course_slug=course, timezone=zone, confirmed=True, now=at
        )


def eight_oclocks(first: date, last: date) -> Iterator[datetime]:
    """Every instant from `first` to `last` that is 08:00 in Toronto or London, in order."""
    day = first
    while day <= last:
        slots = {
            datetime(day.year, day.month, day.day, 8, tzinfo=ZoneInfo(zone)).astimezone(UTC)
            for zone in (TORONTO, LONDON)
        }
        yield from sorted(slots)
        day += timedelta(days=1)


def run(
    database: Database, settings: Settings, clock: FixedClock, until: date, since: date
) -> None:
    dispatcher = Dispatcher(database, settings, load_backend(settings.email_backend), clock)
    for instant in eight_oclocks(since, until):
        clock.set(instant)
        dispatcher.run_pass()


def arrivals(smtpd: CapturingSMTPServer, email: str, zone: str) -> list[tuple[int, date]]:
    """(lesson number, local date) of each lesson `email` received; each at 08:00 local."""
    found = []
    for message in (m.message for m in smtpd.messages if m.rcpt_tos == (email,)):
        sent = message["Date"].datetime.astimezone(ZoneInfo(zone))
        assert (sent.hour, sent.minute) == (8, 0), f"{email} got a lesson at {sent}"
        found.append((lesson_number(message), sent.date()))
    return found


def lesson_number(message: EmailMessage) -> int:
    return int(str(message["Subject"]).split(":")[0].removeprefix("Lesson "))


def test_early_late_and_returning_people_on_the_cohorts_dates(cohorts, settings, clock, smtpd):
    enrol(cohorts, "ada@example.com", TORONTO, "cohort", EARLY)
    enrol(cohorts, "bruno@example.com", LONDON, "cohort", EARLY)
    enrol(cohorts, "dan@example.com", LONDON, "cohort", EARLY)
    run(cohorts, settings, clock, since=date(2027, 2, 11), until=date(2027, 3, 9))
    with cohorts.transaction() as session:  # Dan pauses on 9 March, after lesson 2
        subscriptions.pause(session, "dan@example.com", datetime(2027, 3, 9, 18, tzinfo=UTC))
    enrol(cohorts, "chiara@example.com", TORONTO, "cohort", LATE)
    run(cohorts, settings, clock, since=date(2027, 3, 10), until=date(2027, 3, 24))
    with cohorts.transaction() as session:  # back on Wednesday 24 March, far behind
        subscriptions.resume(session, "dan@example.com", datetime(2027, 3, 24, 18, tzinfo=UTC))
    run(cohorts, settings, clock, since=date(2027, 3, 25), until=date(2027, 5, 10))

    # Early sign-ups: every lesson on the cohort's Monday, at 08:00 local on both sides of DST.
    for email, zone in (("ada@example.com", TORONTO), ("bruno@example.com", LONDON)):
        assert arrivals(smtpd, email, zone) == list(zip(range(1, 11), COHORT_DATES, strict=True))
    # Chiara catches up one lesson a day, then has the cohort's dates from lesson 4.
    assert arrivals(smtpd, "chiara@example.com", TORONTO) == [
        (1, date(2027, 3, 18)),
        (2, date(2027, 3, 19)),
        (3, date(2027, 3, 20)),
        *zip(range(4, 11), COHORT_DATES[3:], strict=True),
    ]
    # Dan: lesson 3 the morning after resuming, lesson 4 the day after, then the cohort (29 March).
    assert arrivals(smtpd, "dan@example.com", LONDON) == [
        (1, date(2027, 3, 1)),
        (2, date(2027, 3, 8)),
        (3, date(2027, 3, 25)),
        (4, date(2027, 3, 26)),
        *zip(range(5, 11), COHORT_DATES[4:], strict=True),
    ]
    ids = [m.message["Message-ID"] for m in smtpd.messages]
    assert len(ids) == len(set(ids)) == 40
    with cohorts.transaction() as session:
        assert set(session.scalars(select(Enrollment.status))) == {"completed"}


def test_a_late_joiner_in_progress_starts_at_the_current_lesson(cohorts, settings, clock, smtpd):
    enrol(cohorts, "eve@example.com", LONDON, "cohort-live", LATE)
    enrol(cohorts, "fay@example.com", TORONTO, "cohort-live", EARLY)
    with cohorts.transaction() as session:
        plan = timeline(session, "eve@example.com", LATE).enrollments[0]
        queue = {entry.email: entry.lesson for entry in overview.upcoming(session)}
    # The operator's queue names the lesson she will get: the cohort's current one.
    assert (queue["eve@example.com"], queue["fay@example.com"]) == ("3 calves-achilles", "1 feet")
    assert [(p.number, p.skipped) for p in plan.before_joining] == [
        (1, "before you joined"),
        (2, "before you joined"),
    ]
    assert [p.number for p in plan.owed] == list(range(3, 11))

    run(cohorts, settings, clock, since=date(2027, 2, 11), until=date(2027, 5, 10))

    assert arrivals(smtpd, "eve@example.com", LONDON) == [
        (3, date(2027, 3, 18)),
        *zip(range(4, 11), COHORT_DATES[3:], strict=True),
    ]
    assert arrivals(smtpd, "fay@example.com", TORONTO) == list(
        zip(range(1, 11), COHORT_DATES, strict=True)
    )
    with cohorts.transaction() as session:
        eve_lessons = session.scalars(
            select(Lesson.position)
            .join(Delivery, Delivery.lesson_id == Lesson.id)
            .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
            .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
            .where(Subscriber.email == "eve@example.com")
            .order_by(Lesson.position)
        ).all()
        # The lessons before she joined are not owed: no delivery rows for them.
        assert eve_lessons == list(range(3, 11))
        after = timeline(session, "eve@example.com", datetime(2027, 5, 10, tzinfo=UTC))
    assert [p.number for p in after.enrollments[0].before_joining] == [1, 2]
    assert after.enrollments[0].status == "completed"


def test_a_lesson_held_by_a_pause_goes_after_it_then_the_rest_one_a_day(
    cohorts, settings, clock, smtpd
):
    enrol(cohorts, "gil@example.com", LONDON, "cohort", EARLY)
    run(cohorts, settings, clock, since=date(2027, 2, 11), until=date(2027, 3, 7))
    # Lesson 2 is refused for now (451) on the 8th: it waits in the ledger when Gil pauses.
    smtpd.fail_next(1, code=451)
    clock.set(datetime(2027, 3, 8, 8, 0, tzinfo=UTC))
    dispatcher = Dispatcher(cohorts, settings, load_backend(settings.email_backend), clock)
    assert dispatcher.run_pass().count("pending") == 1
    with cohorts.transaction() as session:
        subscriptions.pause(session, "gil@example.com", datetime(2027, 3, 8, 8, 1, tzinfo=UTC))
    run(cohorts, settings, clock, since=date(2027, 3, 9), until=date(2027, 3, 16))
    with cohorts.transaction() as session:
        subscriptions.resume(session, "gil@example.com", datetime(2027, 3, 17, 18, tzinfo=UTC))
    run(cohorts, settings, clock, since=date(2027, 3, 18), until=date(2027, 5, 10))

    assert (
        arrivals(smtpd, "gil@example.com", LONDON)
        == [
            (1, date(2027, 3, 1)),
            (2, date(2027, 3, 18)),  # the held lesson, the morning after resuming
            (3, date(2027, 3, 19)),  # the cohort had it on the 15th: the next day, not the same one
            *zip(range(4, 11), COHORT_DATES[3:], strict=True),
        ]
    )


def test_a_lesson_added_after_a_late_joiner_caught_up_comes_the_next_send_day(
    cohorts, settings, clock, smtpd, courses_dir
):
    # Hal joins after the cohort's last date: every lesson one a day, 2 to 11 June.
    enrol(cohorts, "hal@example.com", TORONTO, "cohort", datetime(2027, 6, 1, 15, tzinfo=UTC))
    run(cohorts, settings, clock, since=date(2027, 6, 2), until=date(2027, 6, 11))
    assert arrivals(smtpd, "hal@example.com", TORONTO) == [
        (n, date(2027, 6, n + 1)) for n in range(1, 11)
    ]
    lesson = (courses_dir / "cohort" / "10-recovery.md").read_text()
    (courses_dir / "cohort" / "11-race-day.md").write_text(
        lesson.replace("Lesson 10:", "Lesson 11:")
    )
    with cohorts.transaction() as session:
        [source] = [s for s in load_sources(courses_dir) if s.slug == "cohort"]
        report = sync_course(session, source, datetime(2027, 6, 12, 15, tzinfo=UTC))
    assert report.reopened == 1

    run(cohorts, settings, clock, since=date(2027, 6, 12), until=date(2027, 6, 30))

    # Still catching up (the cohort's date for it was 10 May): the next send day, not a week on.
    assert arrivals(smtpd, "hal@example.com", TORONTO)[10:] == [(11, date(2027, 6, 13))]
