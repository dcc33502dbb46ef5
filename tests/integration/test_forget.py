"""`subscribers forget`: a person's data is erased, and a hash of their address keeps them from ever
being mailed again, by the form, the command line, an import or the dispatcher."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.domain.validation import address_hash
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import (
    Base,
    Course,
    Enrollment,
    EnrollmentStatus,
    Subscriber,
    Suppression,
)
from dripcourse.web.app import create_app

ADA = "ada@example.com"
LESSON_ONE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
LATER = datetime(2026, 4, 30, 13, 0, tzinfo=UTC)


def tick(database: Database, settings: Settings, clock: FixedClock, at: datetime) -> None:
    clock.set(at)
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def everything_in(database: Database) -> str:
    """Every row of every table, as text."""
    with database.read() as session:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table)).all()
        )


def signed_up_and_taught(
    database: Database, settings: Settings, clock: FixedClock, smtpd: CapturingSMTPServer
) -> None:
    """Ada signs up through the form (consent evidence kept), confirms, gets lesson 1, and leaves."""
    with database.transaction() as session:
        result = subscriptions.subscribe(
            session,
            email=ADA,
            course_slug="runners",
            name="Ada Lovelace",
            timezone="America/Toronto",
            now=clock.now(),
            source="http",
            evidence=subscriptions.Evidence("198.51.100.7", "Lovelace-Browser/1.0"),
        )
        subscriptions.confirm(
            session, result.enrollment, clock.now(), subscriptions.Evidence("198.51.100.7")
        )
    tick(database, settings, clock, LESSON_ONE)
    with database.transaction() as session:
        subscriptions.unsubscribe(session, ADA, clock.now())
    assert any(ADA in m.rcpt_tos for m in smtpd.messages)


def test_forget_leaves_no_personal_data_but_a_hashed_suppression(
    synced, settings, clock, smtpd, cli
):
    signed_up_and_taught(synced, settings, clock, smtpd)
    before = everything_in(synced)
    assert ADA in before and "Lovelace" in before and "198.51.100.7" in before

    result = cli("subscribers", "forget", ADA)
    assert result.code == 0, result.err
    assert "personal data erased" in result.out

    after = everything_in(synced)
    for trace in (ADA, "ada@", "Lovelace", "198.51.100.7"):
        assert trace not in after
    with synced.read() as session:
        [kept] = session.scalars(select(Suppression)).all()
    assert (kept.email, kept.email_hash, kept.reason) == (None, address_hash(ADA), "forgotten")
    assert cli("subscribers", "show", ADA).code == 2


def test_a_forgotten_address_is_never_mailed_again(
    synced, settings, clock, smtpd, cli, tmp_path: Path
):
    signed_up_and_taught(synced, settings, clock, smtpd)
    cli("subscribers", "forget", ADA)
    sent_before = len(smtpd.messages)

    refused = cli("subscribe", ADA, "--course", "runners", "--confirmed")
    assert refused.code == 2 and "suppressed (forgotten)" in refused.err

    csv = tmp_path / "people.csv"
    csv.write_text(f"email,name\n{ADA},Ada\n", encoding="utf-8")
    imported = cli("subscribers", "import", str(csv), "--course", "runners", "--confirmed")
    assert imported.code == 1 and "suppressed" in imported.err

    # The form answers as it answers anyone, and stores and sends nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation notice about httpx
        from fastapi.testclient import TestClient
    app = create_app(settings, synced, clock)
    with TestClient(app) as client:
        answer = client.post("/subscribe", json={"email": ADA, "course": "runners"})
        stranger = client.post("/subscribe", json={"email": "bo@example.com", "course": "runners"})
    assert answer.status_code == stranger.status_code == 202
    assert answer.json() == stranger.json()

    # Even a row that got in some other way is held by the dispatcher.
    with synced.transaction() as session:
        course = session.scalars(select(Course)).one()
        person = Subscriber(email=ADA, name="", timezone="America/Toronto", created_at=clock.now())
        session.add(
            Enrollment(
                subscriber=person,
                course=course,
                status=EnrollmentStatus.ACTIVE,
                created_at=clock.now(),
                next_due_at=clock.now(),
            )
        )
    tick(synced, settings, clock, LATER)
    assert [m for m in smtpd.messages[sent_before:] if ADA in m.rcpt_tos] == []
    assert [m.rcpt_tos for m in smtpd.messages[sent_before:]] == [("bo@example.com",)]


def test_forgetting_an_unknown_address_still_suppresses_it(synced, cli):
    result = cli("subscribers", "forget", "nobody@example.com")
    # Exit 1 (issue 12: a typo must not pass in silence), and suppressed all the same.
    assert result.code == 1 and "no subscriber nobody@example.com: nothing to erase" in result.err
    assert cli("subscribe", "nobody@example.com", "--course", "runners").code == 2
