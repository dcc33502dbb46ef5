"""Deliveries that need an operator's eye: those that failed, those waiting to be tried again, the
recent bounces and complaints; and "retry now", which makes a failed or retrying delivery due at
once.

What a retry may never do is send a lesson twice. So it takes only a delivery that the server has
not accepted (failed, or pending after a failed attempt), never one sent or being sent (leased by a
worker), and never one whose lesson the person has had or is about to get by another delivery (a
queued copy). It refuses whoever may no longer be mailed, by the rules the dispatcher applies
(`policy.SENDABLE_WHILE`, `policy.blocked_by`): a retried delivery that the claim would never pick
up would only wait forever.

A retried delivery goes back to pending, due now, with its attempts and its first attempt kept: the
count stays true (every attempt reached the server), and the retry window is not opened again. A
delivery that had given up gets one more try; should it fail again for a temporary reason, it
fails at once instead of starting days of new attempts nobody asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.domain.policy import SENDABLE_WHILE, blocked_by
from dripcourse.domain.states import DeliveryKind
from dripcourse.errors import Conflict, NotFound
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Subscriber,
    Suppression,
    SuppressionReason,
)
from dripcourse.store.queries import suppression_of

RETRIED = "delivery retried"
# A delivery in trouble: refused for good, or waiting to be tried again after a failed attempt.
# Asked as two queries, each of which an index of status answers; as one OR, a database walks
# all ten million deliveries (270 ms in bench/dashboard.py, against 1 ms each).
IN_TROUBLE = (
    Delivery.status == DeliveryStatus.FAILED,
    and_(Delivery.status == DeliveryStatus.PENDING, Delivery.attempts > 0),
)
# What a suppression of these kinds says on the deliveries page (the others are not bounces).
BOUNCE_REASONS = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT)
HINTS = {
    EnrollmentStatus.PAUSED: "; resume them first",
    EnrollmentStatus.COMPLETED: "; queue the lesson instead",
}
REASON_WORDS = {
    SuppressionReason.UNSUBSCRIBED: "unsubscribed from all mail",
    SuppressionReason.HARD_BOUNCE: "suppressed after a hard bounce",
    SuppressionReason.COMPLAINT: "suppressed after a complaint",
    SuppressionReason.MANUAL: "suppressed by an operator",
    SuppressionReason.FORGOTTEN: "forgotten",
}


@dataclass(frozen=True)
class Trouble:
    """One failed or retrying delivery, as the page and the command line show it."""

    delivery_id: int
    subscriber_id: int
    email: str
    timezone: str
    course: str
    kind: str
    lesson: str
    """`2 ankles`, or the kind (`confirmation`)."""
    status: str
    attempts: int
    smtp_code: int | None
    last_error: str
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    """When it is tried next; None for a failed one (never, unless retried)."""

    @property
    def answer(self) -> str:
        """The server's last answer in one line, its code once (the reason often quotes it)."""
        reason = " ".join(self.last_error.split())
        if self.smtp_code is None or str(self.smtp_code) in reason:
            return reason
        return f"{self.smtp_code} {reason}".strip()


@dataclass(frozen=True)
class TroublePage:
    rows: list[Trouble]
    after: int | None
    """The id to pass as `before` for the next page, or None on the last page."""


def in_trouble(session: Session, *, before: int | None = None, limit: int = 50) -> TroublePage:
    """Failed and retrying deliveries, newest first, `limit` at a time below the id `before`:
    keyset paging on the primary key, so that a page deep into the list costs what the first
    one costs."""
    found: list[Any] = []
    for condition in IN_TROUBLE:
        query = (
            select(Delivery, Subscriber, Course.slug, Lesson.position, Lesson.key)
            .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
            .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
            .join(Course, Enrollment.course_id == Course.id)
            .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
            .where(condition)
            .order_by(Delivery.id.desc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.where(Delivery.id < before)
        found += session.execute(query).all()
    found = sorted(found, key=lambda row: row[0].id, reverse=True)[: limit + 1]
    rows = [
        Trouble(
            delivery_id=d.id,
            subscriber_id=s.id,
            email=s.email,
            timezone=s.timezone,
            course=slug,
            kind=d.kind,
            lesson=f"{position} {key}" if key is not None else d.kind,
            status=d.status,
            attempts=d.attempts,
            smtp_code=d.smtp_code,
            last_error=d.last_error or "",
            last_attempt_at=d.last_attempt_at,
            next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.PENDING else None,
        )
        for d, s, slug, position, key in found[:limit]
    ]
    return TroublePage(rows, rows[-1].delivery_id if len(found) > limit else None)


@dataclass(frozen=True)
class Bounce:
    """A bounce noted on a delivery (`bounces._record_on`)."""

    at: datetime
    subscriber_id: int
    email: str
    course: str
    lesson: str
    kind: str
    """hard or soft."""


def recent_bounces(session: Session, limit: int = 20) -> list[Bounce]:
    """The latest bounces reported for deliveries, newest first."""
    found = session.execute(
        select(Delivery, Subscriber, Course.slug, Lesson.position, Lesson.key)
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .join(Course, Enrollment.course_id == Course.id)
        .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
        .where(Delivery.bounced_at.is_not(None))
        .order_by(Delivery.bounced_at.desc(), Delivery.id.desc())
        .limit(limit)
    ).all()
    return [
        Bounce(
            at=d.bounced_at,
            subscriber_id=s.id,
            email=s.email,
            course=slug,
            lesson=f"{position} {key}" if key is not None else d.kind,
            kind=d.bounce or "",
        )
        for d, s, slug, position, key in found
        if d.bounced_at is not None
    ]


def recent_suppressions(session: Session, limit: int = 20) -> Sequence[Suppression]:
    """The latest addresses suppressed for a hard bounce (reported, or refused by the server) or
    a complaint, newest first. A forgotten person's suppression has no address and no detail."""
    return session.scalars(
        select(Suppression)
        .where(Suppression.reason.in_(BOUNCE_REASONS))
        .order_by(Suppression.created_at.desc(), Suppression.id.desc())
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class Retried:
    delivery_id: int
    subscriber_id: int
    email: str
    course: str
    lesson: str
    attempts: int


def retry_now(session: Session, delivery_id: int, now: datetime, *, actor: str) -> Retried:
    """Make a failed or retrying delivery due now, or refuse (`Conflict`) with the reason; audited.

    The row and its enrolment are locked first (`FOR UPDATE` on PostgreSQL; SQLite's writers hold
    the database's lock), so a worker cannot claim it between the checks and the change, and a
    second retry of another copy of the lesson waits to see this one pending.
    """
    delivery = session.scalar(
        select(Delivery).where(Delivery.id == delivery_id).with_for_update(of=Delivery)
    )
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    # The enrolment too: two retries of two copies of one lesson (the rhythm's and a queued one)
    # would each see the other still failed, and both go out.
    enrollment = session.scalars(
        select(Enrollment).where(Enrollment.id == delivery.enrollment_id).with_for_update()
    ).one()
    person, course = enrollment.subscriber, enrollment.course
    lesson = _lesson_words(delivery)
    what = f"{lesson} of {course.slug} to {person.email}"
    _check_not_accepted(delivery, what)
    if delivery.lesson is not None and delivery.lesson.retired_at is not None:
        raise Conflict(f"{what}: that lesson was retired from the course; it is not sent any more")
    if enrollment.status not in SENDABLE_WHILE[DeliveryKind(delivery.kind)]:
        hint = HINTS.get(EnrollmentStatus(enrollment.status), "")
        raise Conflict(
            f"{person.email} is {enrollment.status} in {course.slug}; "
            f"{_kind_words(delivery.kind)} is not sent to them{hint}"
        )
    suppression = suppression_of(session, person.email)
    if blocked_by(delivery.kind, suppression.reason if suppression else None):
        assert suppression is not None
        words = REASON_WORDS.get(SuppressionReason(suppression.reason), suppression.reason)
        raise Conflict(f"{person.email} may not be mailed: {words}")
    _check_no_twin(session, delivery, what)
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.lease_owner = delivery.lease_expires_at = None
    detail = (
        f"{lesson} of {course.slug}, delivery {delivery.id}, after {delivery.attempts} attempt(s)"
    )
    audit.record(session, now, actor, RETRIED, person.email, detail)
    session.flush()
    return Retried(delivery.id, person.id, person.email, course.slug, lesson, delivery.attempts)


def _check_not_accepted(delivery: Delivery, what: str) -> None:
    """Only what the server has not accepted, and what no worker holds, may be tried again."""
    if delivery.status == DeliveryStatus.SENT:
        raise Conflict(f"{what} was already sent; it is never sent twice")
    if delivery.status == DeliveryStatus.SENDING:
        raise Conflict(f"{what} is being sent right now; wait for its outcome")
    if delivery.status == DeliveryStatus.CANCELLED:
        reason = f" ({delivery.last_error})" if delivery.last_error else ""
        raise Conflict(f"{what} was cancelled{reason}; it is not retried")
    if delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0:
        raise Conflict(f"{what} has not been tried yet; it goes out when it is due")


def _check_no_twin(session: Session, delivery: Delivery, what: str) -> None:
    """Another delivery of the same lesson to the same enrolment (the rhythm's and a queued copy)
    that was sent, or is on its way, would make this one a second copy."""
    twins = select(Delivery.status).where(
        Delivery.enrollment_id == delivery.enrollment_id,
        Delivery.id != delivery.id,
    )
    if delivery.lesson_id is None:
        # A confirmation: a new one asked for since is enough; one sent earlier is no reason to
        # leave this one unsent.
        twins = twins.where(
            Delivery.kind == delivery.kind,
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        )
    else:
        twins = twins.where(
            Delivery.lesson_id == delivery.lesson_id,
            Delivery.status.in_(
                [DeliveryStatus.SENT, DeliveryStatus.PENDING, DeliveryStatus.SENDING]
            ),
        )
    status = session.scalar(twins.limit(1))
    if status == DeliveryStatus.SENT:
        raise Conflict(f"{what}: another copy of it was already sent; it is never sent twice")
    if status is not None:
        raise Conflict(f"{what}: another copy of it is already on its way ({status})")


def _lesson_words(delivery: Delivery) -> str:
    if delivery.lesson is None:
        return _kind_words(delivery.kind)
    return f"lesson {delivery.lesson.position} ({delivery.lesson.key})"


def _kind_words(kind: str) -> str:
    return {
        DeliveryKind.CONFIRMATION: "the confirmation email",
        DeliveryKind.EXTRA: "a queued lesson",
        DeliveryKind.COMPLETION: "the completion email",
    }.get(DeliveryKind(kind), "a lesson in the rhythm")
