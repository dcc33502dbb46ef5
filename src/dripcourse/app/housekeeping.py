"""Housekeeping: what the service tidies away once a day, whatever the number of workers.

A sign-up never confirmed within `confirmation_expiry_hours` is removed (its confirmation rows go
with it). Only enrolments that never started: someone who left a course and asked to come back
keeps their history whether or not they confirm. The provider events remembered against replays
are forgotten once older than the longest replay window (`provider_events.forget_old_events`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dripcourse.app.provider_events import forget_old_events
from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.store import tallies
from dripcourse.store.db import Database, first_to_housekeep
from dripcourse.store.models import Enrollment, EnrollmentStatus

log = logging.getLogger(__name__)


def remove_stale_sign_ups(session: Session, now: datetime, max_age: timedelta) -> int:
    """Delete the sign-ups older than `max_age` that were never confirmed; returns how many."""
    stale = list(
        session.scalars(
            select(Enrollment.id).where(
                Enrollment.status == EnrollmentStatus.PENDING,
                Enrollment.confirmed_at.is_(None),
                Enrollment.created_at < now - max_age,
            )
        )
    )
    if stale:
        session.execute(delete(Enrollment).where(Enrollment.id.in_(stale)))
    return len(stale)


def expire_unconfirmed(database: Database, clock: Clock, max_age: timedelta) -> int:
    """The daily job: one transaction, done by one worker only (`first_to_housekeep`)."""
    with database.transaction() as session:
        if not first_to_housekeep(session):
            log.info("housekeeping: another worker is doing it")
            return 0
        removed = remove_stale_sign_ups(session, clock.now(), max_age)
        forgotten = forget_old_events(session, clock.now())
        # The day's deltas of the dashboard's counts folded into one row per key.
        tallies.compact(session)
    if removed:
        log.info("housekeeping: removed %d unconfirmed sign-up(s)", removed)
    if forgotten:
        log.info("housekeeping: forgot %d provider event(s) past the replay windows", forgotten)
    return removed


def daily(database: Database, settings: Settings, clock: Clock) -> Callable[[], int]:
    """The housekeeping job a scheduler runs once a day."""
    return functools.partial(
        expire_unconfirmed, database, clock, timedelta(hours=settings.confirmation_expiry_hours)
    )
