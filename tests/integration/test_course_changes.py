"""Operators change a course while people are in it: lessons added, inserted, removed, reordered."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment

# The ledger logic runs on SQLite, and on PostgreSQL when DRIPCOURSE_TEST_POSTGRES_URL is set.
pytestmark = pytest.mark.both_databases

EXTRA_LESSON = """+++
subject = "Bonus: {{ subscriber.first_name }}, your race-week checklist"
preheader = "A short list for the week before a race."
title = "Race week"
topics = ["Tapering", "Sleep", "Kit"]
+++
Hi {{ subscriber.first_name }},

A short bonus lesson for race week.
"""


def enrol(database: Database, clock: FixedClock, email: str, name: str) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name=name,
            timezone="Europe/Berlin",
            confirmed=True,
            now=clock.now(),
        )


def weekly_ticks(database: Database, settings: Settings, clock: FixedClock, weeks: int) -> None:
    for _ in range(weeks * 7):
        clock.advance(timedelta(days=1))
        Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def resync(database: Database, courses_dir: Path, clock: FixedClock):
    with database.transaction() as session:
        return sync_course(session, load_sources(courses_dir)[0], clock.now())


def subjects(smtpd: CapturingSMTPServer, email: str) -> list[str]:
    return [str(m.message["Subject"]) for m in smtpd.messages if email in m.rcpt_tos]


def test_a_lesson_added_at_the_end_reaches_those_who_had_finished(
    synced, settings, clock, smtpd, courses_dir
):
    enrol(synced, clock, "ada@example.com", "Ada")
    weekly_ticks(synced, settings, clock, 12)
    assert len(subjects(smtpd, "ada@example.com")) == 10
    with synced.transaction() as session:
        assert session.scalars(select(Enrollment.status)).one() == "completed"

    (courses_dir / "runners" / "11-race-week.md").write_text(EXTRA_LESSON)
    report = resync(synced, courses_dir, clock)
    assert report.added == ["race-week"] and report.reopened == 1
    weekly_ticks(synced, settings, clock, 2)
    assert subjects(smtpd, "ada@example.com")[10:] == ["Bonus: Ada, your race-week checklist"]
    with synced.transaction() as session:
        assert session.scalars(select(Enrollment.status)).one() == "completed"


def test_a_lesson_inserted_mid_course_reaches_only_those_who_have_not_passed_it(
    synced, settings, clock, smtpd, courses_dir
):
    enrol(synced, clock, "early@example.com", "Early")
    weekly_ticks(synced, settings, clock, 5)  # five lessons in
    enrol(synced, clock, "late@example.com", "Late")
    weekly_ticks(synced, settings, clock, 1)
    # Slot a new lesson between lessons 2 and 3: "02b" sorts after "02-ankles".
    (courses_dir / "runners" / "02b-race-week.md").write_text(EXTRA_LESSON)
    resync(synced, courses_dir, clock)
    weekly_ticks(synced, settings, clock, 12)
    early, late = subjects(smtpd, "early@example.com"), subjects(smtpd, "late@example.com")
    assert not any(s.startswith("Bonus") for s in early)
    assert len(early) == 10
    assert late[2] == "Bonus: Late, your race-week checklist"
    assert len(late) == 11


def test_a_removed_lesson_is_retired_and_the_course_goes_on(
    synced, settings, clock, smtpd, courses_dir
):
    enrol(synced, clock, "ada@example.com", "Ada")
    weekly_ticks(synced, settings, clock, 2)  # lessons 1 and 2 sent
    (courses_dir / "runners" / "03-calves-achilles.md").unlink()
    report = resync(synced, courses_dir, clock)
    assert report.retired == ["calves-achilles"]
    weekly_ticks(synced, settings, clock, 10)
    got = subjects(smtpd, "ada@example.com")
    assert len(got) == 9
    assert not any("Calves" in s or "calves" in s for s in got)
    with synced.transaction() as session:
        # History stays: the two lessons she had are still in the ledger.
        assert len(session.scalars(select(Delivery)).all()) == 9


def test_a_lesson_retired_while_it_waits_in_the_ledger_is_cancelled(
    synced, settings, clock, smtpd, courses_dir
):
    enrol(synced, clock, "ada@example.com", "Ada")
    # Lesson 1 enters the ledger but the SMTP server is down.
    smtpd.fail_next(100, code=421)
    clock.set(datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
    Dispatcher(synced, settings, load_backend(settings.email_backend), clock).run_pass()
    smtpd.reset()
    (courses_dir / "runners" / "01-feet.md").unlink()
    resync(synced, courses_dir, clock)
    Dispatcher(synced, settings, load_backend(settings.email_backend), clock).run_pass()
    # The lesson that takes its place goes out in its slot.
    assert [s.split(":")[0] for s in subjects(smtpd, "ada@example.com")] == ["Lesson 2"]
    with synced.transaction() as session:
        statuses = sorted(d.status for d in session.scalars(select(Delivery)))
    assert statuses == ["cancelled", "sent"]


def test_renumbering_files_keeps_history(synced, settings, clock, smtpd, courses_dir):
    enrol(synced, clock, "ada@example.com", "Ada")
    weekly_ticks(synced, settings, clock, 2)
    folder = courses_dir / "runners"
    for path in sorted(folder.glob("*.md")):
        number, rest = path.name.split("-", 1)
        shutil.move(path, folder / f"{int(number) * 10:03d}-{rest}")
    report = resync(synced, courses_dir, clock)
    assert report.added == [] and report.retired == [] and not report.reordered
    weekly_ticks(synced, settings, clock, 10)
    got = subjects(smtpd, "ada@example.com")
    assert [s.split(":")[0] for s in got] == [f"Lesson {n}" for n in range(1, 11)]
