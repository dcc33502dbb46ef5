"""Housekeeping that must run once, whatever the number of workers: unconfirmed sign-ups expire,
and on PostgreSQL only the worker holding the advisory lock does it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.app.housekeeping import expire_unconfirmed
from dripcourse.clock import FixedClock
from dripcourse.store.db import HOUSEKEEPING_LOCK, Database
from dripcourse.store.models import Enrollment

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


@pytest.mark.postgres  # advisory locks are PostgreSQL's; SQLite workers take turns anyway
def test_a_second_worker_skips_while_the_first_holds_the_lock(synced, clock):
    sign_up(synced, clock, "old@example.com")
    clock.set(clock.now() + timedelta(hours=80))
    other_worker = Database(synced.url)  # its own connections, as another process would have
    try:
        with other_worker.transaction() as session:
            assert session.scalar(select(func.pg_try_advisory_xact_lock(HOUSEKEEPING_LOCK)))
            assert expire_unconfirmed(synced, clock, timedelta(hours=72)) == 0
    finally:
        other_worker.dispose()
    assert enrolments(synced) == 1
    assert expire_unconfirmed(synced, clock, timedelta(hours=72)) == 1
