"""The subscriber record itself: find a person, change their details, erase them.

Enrolments (what they receive) are `subscriptions.py`'s business; this module is about the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.app.webhooks import announce_forgotten
from dripcourse.domain.schedule import same_local_day
from dripcourse.domain.validation import (
    address_hash,
    check_timezone,
    clean_name,
    mailbox_key,
    normalise_email,
)
from dripcourse.errors import BadInput, NotFound
from dripcourse.store.models import EnrollmentStatus, Subscriber, Suppression, SuppressionReason
from dripcourse.store.outbox import erase_address


def update_subscriber(
    session: Session,
    subscriber_id: int,
    now: datetime,
    *,
    name: str | None = None,
    timezone: str | None = None,
    actor: str,
) -> Subscriber:
    """Change a person's name and/or time zone (None: leave as it is; an empty name clears it).

    A new zone moves the next lesson of each running enrolment to the send time of the same local
    date in the new zone (never into the past), so "08:00 their time" stays true from the next
    lesson on; the lessons after it follow from there.
    """
    subscriber = get_subscriber(session, subscriber_id)
    clean = None if name is None else clean_name(name)
    zone = None if timezone is None else check_timezone(timezone)
    changed = []
    if clean is not None and clean != subscriber.name:
        subscriber.name = clean
        changed.append("name")  # not the name itself: the log outlives a forgotten person's name
    if zone is not None and zone != subscriber.timezone:
        changed.append(f"time zone {subscriber.timezone} -> {zone}")
        old, new = ZoneInfo(subscriber.timezone), ZoneInfo(zone)
        for enrollment in subscriber.enrollments:
            if enrollment.next_due_at is not None and enrollment.status in (
                EnrollmentStatus.ACTIVE,
                EnrollmentStatus.PAUSED,
            ):
                enrollment.next_due_at = same_local_day(
                    enrollment.next_due_at,
                    old,
                    new,
                    enrollment.course.settings.rhythm,
                    # A paused enrolment keeps its place; `resume` moves it past the pause.
                    not_before=now if enrollment.status == EnrollmentStatus.ACTIVE else None,
                )
        subscriber.timezone = zone
    if changed:
        audit.record(session, now, actor, "details changed", subscriber.email, "; ".join(changed))
    return subscriber


def delete_subscriber(session: Session, subscriber_id: int, now: datetime, *, actor: str) -> str:
    """Erase a person: the subscriber row with their enrolments, consent evidence and delivery
    history (the foreign keys cascade). A suppression of their address stays: it is what keeps the
    promise never to mail them again, should the address come back. Returns the address."""
    subscriber = get_subscriber(session, subscriber_id)
    address = subscriber.email
    # Enrolments and deliveries not loaded go with the database's ON DELETE CASCADE.
    session.delete(subscriber)
    _erased(session, subscriber.id, now)
    audit.forget(session, address)
    audit.record(session, now, actor, "deleted", audit.FORGOTTEN, "with their delivery history")
    session.flush()
    return address


@dataclass(frozen=True)
class Forgotten:
    had_data: bool
    """A subscriber row (with its enrolments and deliveries) was erased."""
    address_hash: str
    """What is kept: the suppression's SHA-256 of the address (`validation.address_hash`)."""


def forget(session: Session, email: str, now: datetime, *, actor: str) -> Forgotten:
    """Erase a person (the right to erasure): their subscriber row, enrolments, consent evidence
    and delivery history, and the address and details of their suppression. What stays is a
    suppression holding only the hash of the address, so that it is never mailed again: a new
    sign-up with it gets the answer anyone gets, and nothing is sent.

    Forgetting an address nobody holds still suppresses it (the person asked not to be mailed).
    """
    address = normalise_email(email)
    hashed = address_hash(address)
    subscriber = holder_of(session, address)
    if subscriber is not None:
        session.delete(subscriber)  # enrolments and deliveries go with ON DELETE CASCADE
        _erased(session, subscriber.id, now)
    audit.forget(session, address)  # any spelling: the same mailbox as the subscriber's
    suppression = session.scalar(select(Suppression).where(Suppression.email_hash == hashed))
    if suppression is None:
        suppression = Suppression(email_hash=hashed, reason=SuppressionReason.FORGOTTEN)
        session.add(suppression)
    elif suppression.reason == SuppressionReason.UNSUBSCRIBED:
        # An unsubscribe may be lifted by the person's own new sign-up; once forgotten there is no
        # person left whose consent could lift it.
        suppression.reason = SuppressionReason.FORGOTTEN
    suppression.email = None
    suppression.detail = ""  # a bounce's detail may quote the address
    suppression.created_at = now
    audit.record(
        session, now, actor, "forgotten", audit.FORGOTTEN, "only a hash of the address kept"
    )
    session.flush()
    return Forgotten(had_data=subscriber is not None, address_hash=hashed)


def _erased(session: Session, subscriber_id: int, now: datetime) -> None:
    """The webhook side of erasing a person: their address taken out of every stored event
    (those not yet delivered go without it), and `subscriber.forgotten`, ids only."""
    erase_address(session, subscriber_id)
    announce_forgotten(session, subscriber_id, now)


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return subscriber


def holder_of(session: Session, address: str) -> Subscriber | None:
    """The person whose mailbox `address` names, in whatever spelling they were stored."""
    return session.scalar(select(Subscriber).where(Subscriber.email_key == mailbox_key(address)))


def find_subscriber(session: Session, email: str) -> Subscriber:
    try:
        address = normalise_email(email)
    except BadInput:
        # Older data may hold an address today's rules refuse (a non-ASCII local part): it can
        # still be found as it is stored, to be looked at, unsubscribed or forgotten. Anything
        # else that is refused stays a bad input, not a stranger.
        stored = holder_of(session, email.strip())
        if stored is None:
            raise
        return stored
    subscriber = holder_of(session, address)
    if subscriber is None:
        raise NotFound(f"no subscriber {address}")
    return subscriber
