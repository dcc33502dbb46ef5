"""`dripcourse run`: APScheduler wiring around the dispatcher.

The dispatch job runs on an interval, coalesced and never two at once; housekeeping runs daily. The
database decides who sends what, so the scheduler is only a wake-up: any number of processes may run.
SIGINT and SIGTERM let the message in flight finish, then the process exits 0.
"""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, select

from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.db import Database
from dripcourse.dispatch import Dispatcher
from dripcourse.models import Enrollment, EnrollmentStatus

log = logging.getLogger(__name__)


def expire_unconfirmed(database: Database, clock: Clock, max_age: timedelta) -> int:
    """Remove sign-ups never confirmed within `max_age` (their confirmation rows go with them).

    Only enrolments that never started: someone who left a course and asked to come back keeps
    their history whether or not they confirm."""
    cutoff = clock.now() - max_age
    with database.transaction() as session:
        stale = list(
            session.scalars(
                select(Enrollment.id).where(
                    Enrollment.status == EnrollmentStatus.PENDING,
                    Enrollment.confirmed_at.is_(None),
                    Enrollment.created_at < cutoff,
                )
            )
        )
        if stale:
            session.execute(delete(Enrollment).where(Enrollment.id.in_(stale)))
    if stale:
        log.info("housekeeping: removed %d unconfirmed sign-up(s)", len(stale))
    return len(stale)


def run_forever(
    database: Database, settings: Settings, dispatcher: Dispatcher, clock: Clock
) -> None:
    """Block until SIGINT/SIGTERM, dispatching every `settings.dispatch_interval` seconds."""
    stop = dispatcher.stop
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        dispatcher.run_pass,
        "interval",
        seconds=settings.dispatch_interval,
        id="dispatch",
        coalesce=True,
        max_instances=1,
        next_run_time=clock.now(),
    )
    scheduler.add_job(
        expire_unconfirmed,
        "cron",
        hour=3,
        minute=17,
        id="housekeeping",
        args=[database, clock, timedelta(hours=settings.confirmation_expiry_hours)],
        coalesce=True,
        max_instances=1,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the message in flight", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    scheduler.start()
    log.info("dripcourse running: dispatch every %ss", settings.dispatch_interval)
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        scheduler.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped cleanly")
