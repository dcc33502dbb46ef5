"""What the provider-hook tests share: a delivery accepted by a relay that answers as a provider's
does, and the state a bounce may change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import AuditEntry, Delivery, Enrollment, Subscriber, Suppression
from dripcourse.store.provider_events import ProviderEvent

ADA = "ada@example.com"


def send_first_lesson(
    database: Database,
    settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
    reply: str,
    timezone: str = "UTC",
) -> Delivery:
    """Ada's first lesson, accepted by a relay that answers `reply`; the delivery row."""
    smtpd.accepted_reply = reply
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=ADA,
            course_slug="runners",
            name="Ada Lovelace",
            timezone=timezone,
            confirmed=True,
            now=clock.now(),
        )
    clock.set(clock.now() + timedelta(days=1))
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()
    assert len(smtpd.messages) == 1
    with database.read() as session:
        delivery = session.scalars(select(Delivery).where(Delivery.sent_at.is_not(None))).one()
        session.expunge(delivery)
    return delivery


def state(database: Database, *, events: bool = True) -> tuple[object, ...]:
    """Everything a bounce may change; and the events remembered, unless `events` is false (a
    verified event is remembered even when it names nobody of ours, so that a retry of it is a
    duplicate)."""
    with database.read() as session:
        return (
            session.scalars(select(Suppression.email)).all(),
            session.scalars(select(Enrollment.status)).all(),
            session.scalars(select(Subscriber.soft_bounces)).all(),
            session.scalars(select(Delivery.bounce)).all(),
            session.scalar(select(func.count()).select_from(AuditEntry)),
            session.scalar(select(func.count()).select_from(ProviderEvent)) if events else None,
        )


def suppressed(database: Database) -> list[str]:
    with database.read() as session:
        return list(session.scalars(select(Suppression.email)))
