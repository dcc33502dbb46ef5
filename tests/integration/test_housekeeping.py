"""Housekeeping that must run once, whatever the number of workers: unconfirmed sign-ups expire,
provider events past the replay windows are forgotten, and on PostgreSQL only the worker holding
the advisory lock does it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from provider_signing import MAILGUN_KEY, mailgun_payload
from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.app.housekeeping import expire_unconfirmed
from dripcourse.app.provider_events import KEPT_FOR, apply_events
from dripcourse.app.providers import mailgun
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.errors import Unauthentic
from dripcourse.store.db import Database, housekeeping_lock
from dripcourse.store.models import Enrollment
from dripcourse.store.provider_events import ProviderEvent

pytestmark = pytest.mark.both_databases


def sign_up(database: Database, clock: FixedClock, email: str) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(session, email=email, course_slug="runners", now=clock.now())


def enrolments(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(Enrollment)) or 0


def test_unconfirmed_sign_ups_expire_after_their_time(synced, clock):
    sign_up(synced, clock, "old@example.com")
    clock.set(clock.now() + timedelta(hours=80))
    sign_up(synced, clock, "new@example.com")
    assert expire_unconfirmed(synced, clock, timedelta(hours=72)) == 1
    assert enrolments(synced) == 1


def remembered(database: Database) -> list[str]:
    with database.read() as session:
        return sorted(session.scalars(select(ProviderEvent.event_id)))


def test_provider_events_are_forgotten_once_a_replay_is_refused_anyway(
    synced: Database, clock: FixedClock, settings: Settings
) -> None:
    received = clock.now()
    body = mailgun_payload("<lesson-1@example.com>", received)
    event = mailgun.read_event(mailgun.verify(body, MAILGUN_KEY, received))
    with synced.transaction() as session:
        assert apply_events(session, "mailgun", [event], received, settings).outcomes == ["unknown"]
    keys = remembered(synced)
    assert len(keys) == 2  # the event's id and its signature's token

    clock.set(received + KEPT_FOR)
    expire_unconfirmed(synced, clock, timedelta(hours=72))
    assert remembered(synced) == keys  # still inside the longest window: kept

    clock.set(received + KEPT_FOR + timedelta(seconds=1))
    expire_unconfirmed(synced, clock, timedelta(hours=72))
    assert remembered(synced) == []
    # Forgotten, and still no replay: its signed timestamp is too old now.
    with pytest.raises(Unauthentic, match="replay"):
        mailgun.verify(body, MAILGUN_KEY, clock.now())


@pytest.mark.postgres  # advisory locks are PostgreSQL's; SQLite workers take turns anyway
def test_a_second_worker_skips_while_the_first_holds_the_lock(synced, clock):
    sign_up(synced, clock, "old@example.com")
    clock.set(clock.now() + timedelta(hours=80))
    other_worker = Database(synced.url)  # its own connections, as another process would have
    try:
        with other_worker.transaction() as session:
            assert session.scalar(select(housekeeping_lock()))
            assert expire_unconfirmed(synced, clock, timedelta(hours=72)) == 0
    finally:
        other_worker.dispose()
    assert enrolments(synced) == 1
    assert expire_unconfirmed(synced, clock, timedelta(hours=72)) == 1
