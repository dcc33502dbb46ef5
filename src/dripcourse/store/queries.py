"""Small units of store work that the operations and the engine share: suppressing an address
and finding its suppression, making an owed delivery row, reading claimed deliveries as `Job`s,
the lessons enrolments have had, and finishing enrolments."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dripcourse.domain.delivery import Job
from dripcourse.domain.enrolment import Change, stamps
from dripcourse.domain.policy import HAD, SELF_LIFTED
from dripcourse.domain.validation import address_hash, domain_of
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    Lesson,
    Subscriber,
    Suppression,
    SuppressionReason,
)


def suppress(
    session: Session, email: str, reason: SuppressionReason, now: datetime, detail: str = ""
) -> None:
    existing = suppression_of(session, email)
    if existing is None:
        session.add(
            Suppression(
                email=email,
                email_hash=address_hash(email),
                reason=reason,
                detail=detail,
                created_at=now,
            )
        )
    elif existing.reason in SELF_LIFTED and reason not in SELF_LIFTED:
        # A bounce or complaint outranks an unsubscribe: it must not be lifted by a new sign-up.
        existing.reason, existing.detail = reason, detail


def suppression_of(session: Session, address: str) -> Suppression | None:
    """The suppression of a normalised address, matched by its hash so that the suppression of a
    forgotten person (whose address is no longer stored) still holds."""
    return session.scalar(
        select(Suppression).where(Suppression.email_hash == address_hash(address))
    )


def new_delivery(
    enrollment: Enrollment, lesson_id: int | None, kind: DeliveryKind, due_at: datetime
) -> Delivery:
    return Delivery(
        enrollment=enrollment,
        lesson_id=lesson_id,
        kind=kind,
        status=DeliveryStatus.PENDING,
        due_at=due_at,
        next_attempt_at=due_at,
        attempts=0,
        created_at=due_at,
        message_id=make_message_id(enrollment.course),
    )


def make_message_id(course: Course) -> str:
    # Random, made once per delivery and reused on every attempt: a retry of a message that did
    # reach the server carries the same Message-ID, so the recipient's client can drop the copy.
    return f"<{uuid.uuid4().hex}.{course.slug}@{domain_of(course.settings.sender.email)}>"


def jobs_for(session: Session, delivery_ids: Sequence[int]) -> list[Job]:
    """The deliveries as plain `Job`s, in sending order."""
    rows = session.execute(
        select(
            Delivery.id.label("delivery_id"),
            Delivery.kind,
            Delivery.enrollment_id,
            Enrollment.course_id,
            Lesson.key.label("lesson_key"),
            Delivery.message_id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.timezone,
            Delivery.due_at,
            Delivery.attempts,
            func.coalesce(Delivery.first_attempt_at, Delivery.due_at).label("first_attempt_at"),
        )
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.next_attempt_at, Delivery.id)
    ).all()
    return [Job(**row._mapping) for row in rows]


class HadLesson(NamedTuple):
    key: str
    at: datetime
    """When it went out (or, given up on, when it was due)."""


def lesson_histories(
    session: Session, enrollment_ids: Collection[int]
) -> dict[int, list[HadLesson]]:
    """The lessons each enrolment has had in the rhythm (`policy.HAD`), oldest first: the one
    definition the engine, the catalog and the timeline read."""
    histories: dict[int, list[HadLesson]] = {enrollment_id: [] for enrollment_id in enrollment_ids}
    if not histories:
        return histories
    for enrollment_id, key, sent_at, due_at in session.execute(
        select(Delivery.enrollment_id, Lesson.key, Delivery.sent_at, Delivery.due_at)
        .join(Lesson, Delivery.lesson_id == Lesson.id)
        .where(
            Delivery.enrollment_id.in_(histories),
            Delivery.kind == DeliveryKind.LESSON,
            Delivery.status.in_(HAD),
        )
        .order_by(Delivery.enrollment_id, Delivery.due_at, Delivery.id)
    ):
        histories[enrollment_id].append(HadLesson(key, sent_at or due_at))
    return histories


def finish_enrollments(session: Session, enrollment_ids: Collection[int], now: datetime) -> None:
    """`Change.FINISH` for many enrolments in one statement; those no longer running (someone
    unsubscribed meanwhile) stay as they are."""
    if not enrollment_ids:
        return
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(enrollment_ids), Enrollment.status.in_(Change.FINISH.sources))
        .values(status=Change.FINISH.target, **stamps(Change.FINISH, now))
        .execution_options(synchronize_session=False)
    )
