"""The completion email as a careless author may leave it: `completion.md` deleted and the course
synced again, after the email went out through a real SMTP server (its "view in your browser" link
then says the email is gone, a 404, never a 500) or while it waits for its slot (it is cancelled,
as a retired lesson's copies are, not retried for days and failed). SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from strength_courses import run_passes, write_strength_courses

from dripcourse.app import subscriptions
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, DeliveryKind, Enrollment, Subscriber
from dripcourse.web.app import create_app

pytestmark = pytest.mark.both_databases

SIGN_UP = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)
"""Lesson 1 on Tuesday 2 March 2027, 08:00 in Toronto; the completion email on the 30th, after
the spring DST change (14 March)."""


def sync(database: Database, courses_dir: Path, now: datetime) -> None:
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, now)


def enrol_and_run(database: Database, settings: Settings, clock: FixedClock, end: datetime) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email="ada@example.com",
            course_slug="strength-phase-1",
            name="Ada Lovelace",
            timezone="America/Toronto",
            confirmed=True,
            now=SIGN_UP,
        )
    run_until(database, settings, clock, SIGN_UP, end)


def run_until(
    database: Database, settings: Settings, clock: FixedClock, at: datetime, end: datetime
) -> None:
    clock.set(at)
    run_passes(database, settings, clock, end, step=timedelta(hours=2))


def test_view_online_of_a_completion_email_whose_file_was_removed_is_a_404(
    database: Database,
    courses_dir: Path,
    settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
) -> None:
    write_strength_courses(courses_dir)
    sync(database, courses_dir, SIGN_UP)
    enrol_and_run(database, settings, clock, datetime(2027, 3, 30, 14, 0, tzinfo=UTC))
    [completion] = [
        m.message for m in smtpd.messages if "You finished" in str(m.message["Subject"])
    ]
    body = completion.get_body(preferencelist=("plain",))
    assert body is not None
    [link] = re.findall(r"https://courses\.example\.org(/view/\S+)", str(body.get_content()))
    client = TestClient(create_app(settings, database, clock), raise_server_exceptions=False)
    assert client.get(link).status_code == 200

    (courses_dir / "strength-phase-1" / "completion.md").unlink()
    sync(database, courses_dir, clock.now())
    gone = client.get(link)

    assert gone.status_code == 404
    assert "no longer available" in gone.text


def test_a_completion_email_waiting_when_its_file_is_removed_is_cancelled(
    database: Database,
    courses_dir: Path,
    settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
) -> None:
    write_strength_courses(courses_dir)
    sync(database, courses_dir, SIGN_UP)
    # Lesson 4 on Tuesday 23 March; the completion email waits for the 30th.
    enrol_and_run(database, settings, clock, datetime(2027, 3, 24, 0, 0, tzinfo=UTC))

    (courses_dir / "strength-phase-1" / "completion.md").unlink()
    sync(database, courses_dir, clock.now())
    run_until(database, settings, clock, clock.now(), datetime(2027, 4, 3, 0, 0, tzinfo=UTC))

    assert not [m for m in smtpd.messages if "You finished" in str(m.message["Subject"])]
    with database.read() as session:
        statuses = session.scalars(
            select(Delivery.status).where(Delivery.kind == DeliveryKind.COMPLETION)
        ).all()
    assert statuses == ["cancelled"]
    # The next course goes on: it was owed at the finish.
    assert [m for m in smtpd.messages if "Phase 2, lesson 1" in str(m.message["Subject"])]


def test_unsubscribing_from_the_completion_email_stops_the_next_course_it_started(
    database: Database,
    courses_dir: Path,
    settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
) -> None:
    """The completion email announces the next course, in which the person was enrolled on the
    consent of this one: its unsubscribe link (a mail client's one-click button) must stop that
    course too, or the next lessons come the day after they said stop."""
    write_strength_courses(courses_dir)
    sync(database, courses_dir, SIGN_UP)
    enrol_and_run(database, settings, clock, datetime(2027, 3, 30, 14, 0, tzinfo=UTC))
    [completion] = [
        m.message for m in smtpd.messages if "You finished" in str(m.message["Subject"])
    ]
    one_click = str(completion["List-Unsubscribe"]).strip("<>").split(">")[0]
    path = re.sub(r"^https://courses\.example\.org", "", one_click)
    client = TestClient(create_app(settings, database, clock), raise_server_exceptions=False)

    answer = client.post(path, data={"List-Unsubscribe": "One-Click"})
    run_until(database, settings, clock, clock.now(), datetime(2027, 4, 10, 0, 0, tzinfo=UTC))

    assert answer.status_code == 200
    assert not [m for m in smtpd.messages if "Phase 2" in str(m.message["Subject"])]
    with database.read() as session:
        statuses = session.scalars(
            select(Enrollment.status).join(Subscriber).order_by(Enrollment.id)
        ).all()
    assert statuses == ["unsubscribed", "unsubscribed"]
