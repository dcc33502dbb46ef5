"""Two sending workers at once (separate `dripcourse tick --now` processes) through the end of a
course: each person gets each lesson, one completion email and one first lesson of the next
course, and is enrolled in it once, with one audit entry. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from strength_courses import write_strength_courses

from dripcourse.app import subscriptions
from dripcourse.clock import FixedClock
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import AuditEntry, Course, Enrollment

pytestmark = pytest.mark.both_databases

PEOPLE = [f"reader{n}@example.com" for n in range(60)]
SIGN_UP = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
# Five minutes after each slot in Toronto (EST, then EDT from 14 March): the four lessons, the
# completion email, and phase 2's first lesson the day after at 07:30.
PASSES = [
    "2027-03-02T13:05:00Z",
    "2027-03-09T13:05:00Z",
    "2027-03-16T12:05:00Z",
    "2027-03-23T12:05:00Z",
    "2027-03-30T12:05:00Z",
    "2027-03-31T11:35:00Z",
]


def start_tick(url: str, smtpd: CapturingSMTPServer, now: str) -> subprocess.Popen[str]:
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "dripcourse"]
    env = {
        **os.environ,
        "DRIPCOURSE_DATABASE_URL": url,
        "DRIPCOURSE_EMAIL_BACKEND": smtpd.url,
        "DRIPCOURSE_SECRET_KEY": "test-secret-key",
        "DRIPCOURSE_WORKERS": "1",
        # Small batches, so that the two workers take turns on the same due enrolments.
        "DRIPCOURSE_BATCH_SIZE": "7",
        "DRIPCOURSE_SEND_GROUP": "3",
    }
    env.pop("DRIPCOURSE_CONFIG", None)
    return subprocess.Popen(
        [*command, "tick", "--now", now, "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_workers_send_nothing_twice_at_the_end_of_a_course(
    database: Database, database_url: str, courses_dir: Path, clock: FixedClock, smtpd
):
    write_strength_courses(courses_dir)
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
        for email in PEOPLE:
            subscriptions.subscribe(
                session,
                email=email,
                course_slug="strength-phase-1",
                timezone="America/Toronto",
                confirmed=True,
                now=SIGN_UP,
            )
    for now in PASSES:
        workers = [start_tick(database_url, smtpd, now) for _ in range(2)]
        for worker in workers:
            _out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
    received = Counter(
        (address, str(m.message["Subject"])) for m in smtpd.messages for address in m.rcpt_tos
    )
    assert set(received.values()) == {1}, "a message arrived twice"
    for email in PEOPLE:
        subjects = sorted(subject for address, subject in received if address == email)
        assert len(subjects) == 6, (email, subjects)
        assert subjects[-1] == "You finished Strength, phase 1, there"
        assert "Phase 2, lesson 1: The split squat" in subjects
    with database.read() as session:
        enrolled = session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .join(Course)
            .where(Course.slug == "strength-phase-2", Enrollment.source == "next-course")
        )
        entries = session.scalar(
            select(func.count()).where(AuditEntry.detail.like("enrolled in strength-phase-2%"))
        )
    assert enrolled == entries == len(PEOPLE)
