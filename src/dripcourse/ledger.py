"""The ledger's state changes, in the database: materialise what is owed, claim it, record outcomes.

Each function takes the session of one short transaction opened by `dispatch.py`. The claim step is the
one to read when reasoning about concurrency: on PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite the
`BEGIN IMMEDIATE` of every transaction (see `db.py`) makes a claim exclusive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from dripcourse.backends.base import DeliveryResult, Outcome
from dripcourse.courses import rhythm_of
from dripcourse.db import upsert_insert
from dripcourse.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Subscriber,
    Suppression,
    SuppressionReason,
)
from dripcourse.schedule import (
    RetryPolicy,
    following_lesson_due,
    next_lesson,
    retry_at,
    should_give_up,
)
from dripcourse.subscriptions import (
    SELF_LIFTED,
    WAITING_FOR_CONSENT,
    make_message_id,
    suppress,
)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery, as plain data for rendering and sending outside any transaction."""

    delivery_id: int
    kind: str
    enrollment_id: int
    course_id: int
    lesson_key: str | None
    message_id: str
    email: str
    name: str
    timezone: str


def materialise_due(session: Session, now: datetime, limit: int) -> int:
    """Put the next lesson of each enrolment whose time has come into the ledger.

    Returns how many due enrolments it handled (each leaves the due set: owed a lesson now, held
    because suppressed, or completed), so that a caller can loop until fewer than `limit` come back.

    One lesson per enrolment at a time: the following one is scheduled only once this one is sent
    or given up (`record`), so a downtime never ends in a burst.
    """
    query = (
        select(Enrollment)
        .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at <= now)
        .order_by(Enrollment.next_due_at)
        .limit(limit)
        .options(joinedload(Enrollment.subscriber))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Enrollment)
    due = session.scalars(query).all()
    if not due:
        return 0
    orders = _lesson_orders(session, {e.course_id for e in due})
    histories = _histories(session, [e.id for e in due])
    suppressed = set(
        session.scalars(
            select(Suppression.email).where(
                Suppression.email.in_({e.subscriber.email for e in due})
            )
        )
    )
    courses = {
        c.id: c
        for c in session.scalars(select(Course).where(Course.id.in_({e.course_id for e in due})))
    }
    for enrollment in due:
        due_at, enrollment.next_due_at = enrollment.next_due_at, None
        if enrollment.subscriber.email in suppressed:
            continue  # held: nothing is owed to a suppressed address
        keys, ids = orders[enrollment.course_id]
        key = next_lesson(keys, histories[enrollment.id])
        if key is None:
            enrollment.status = EnrollmentStatus.COMPLETED
            enrollment.ended_at = now
            continue
        assert due_at is not None
        _insert_lesson_delivery(
            session, enrollment, courses[enrollment.course_id], ids[key], due_at
        )
    return len(due)


def _insert_lesson_delivery(
    session: Session, enrollment: Enrollment, course: Course, lesson_id: int, due_at: datetime
) -> None:
    # The partial unique index makes a lesson owed once per enrolment: a second worker's insert
    # is ignored, and a copy cancelled earlier (they had unsubscribed) is owed again.
    values = {
        "enrollment_id": enrollment.id,
        "lesson_id": lesson_id,
        "kind": DeliveryKind.LESSON,
        "status": DeliveryStatus.PENDING,
        "due_at": due_at,
        "next_attempt_at": due_at,
        "attempts": 0,
        "created_at": due_at,
        "message_id": make_message_id(course),
    }
    insert = upsert_insert(session)
    statement = insert(Delivery).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["enrollment_id", "lesson_id"],
            index_where=Delivery.kind == DeliveryKind.LESSON,
            set_={
                "status": DeliveryStatus.PENDING,
                "due_at": due_at,
                "next_attempt_at": due_at,
                "attempts": 0,
                "last_error": None,
                "first_attempt_at": None,
            },
            where=Delivery.status == DeliveryStatus.CANCELLED,
        )
    )


def claim(session: Session, now: datetime, worker: str, limit: int, lease: timedelta) -> list[Job]:
    """Take up to `limit` deliveries that are due (or whose claim has expired) for this worker."""
    # Paused and ended enrolments keep their deliveries, but nobody picks them up.
    sendable = and_(
        Delivery.enrollment_id == Enrollment.id,
        or_(
            and_(
                Delivery.kind == DeliveryKind.CONFIRMATION,
                Enrollment.status.in_(WAITING_FOR_CONSENT),
            ),
            and_(
                Delivery.kind == DeliveryKind.LESSON, Enrollment.status == EnrollmentStatus.ACTIVE
            ),
            and_(
                Delivery.kind == DeliveryKind.EXTRA,
                Enrollment.status.in_([EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED]),
            ),
        ),
    )
    candidates = [
        and_(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now),
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at <= now),
    ]
    ids: list[int] = []
    for condition in candidates:
        if len(ids) >= limit:
            break
        query = (
            select(Delivery.id)
            .join(Enrollment, sendable)
            .where(condition)
            .order_by(Delivery.next_attempt_at)
            .limit(limit - len(ids))
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Delivery)
        ids.extend(session.scalars(query))
    if not ids:
        return []
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(
            status=DeliveryStatus.SENDING,
            lease_owner=worker,
            lease_expires_at=now + lease,
            attempts=Delivery.attempts + 1,
            last_attempt_at=now,
            first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    return jobs_for(session, ids)


def jobs_for(session: Session, delivery_ids: Sequence[int]) -> list[Job]:
    """The deliveries as plain `Job`s, in sending order."""
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.kind,
            Delivery.enrollment_id,
            Enrollment.course_id,
            Lesson.key,
            Delivery.message_id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.timezone,
        )
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.next_attempt_at, Delivery.id)
    ).all()
    return [Job(*row) for row in rows]


def still_wanted(session: Session, jobs: Sequence[Job]) -> set[int]:
    """The delivery ids among `jobs` that may still go out: checked right before sending, so an
    unsubscribe or a suppression that arrived after the claim is honoured."""
    emails = {job.email for job in jobs}
    suppressed = dict(
        session.execute(
            select(Suppression.email, Suppression.reason).where(Suppression.email.in_(emails))
        ).all()
    )
    open_ids = set(
        session.scalars(
            select(Delivery.id).where(
                Delivery.id.in_([job.delivery_id for job in jobs]),
                Delivery.status == DeliveryStatus.SENDING,
            )
        )
    )
    wanted = set()
    for job in jobs:
        reason = suppressed.get(job.email)
        # A confirmation was asked for by the person, even after an earlier unsubscribe.
        blocked = reason is not None and not (
            job.kind == DeliveryKind.CONFIRMATION and reason in SELF_LIFTED
        )
        if job.delivery_id in open_ids and not blocked:
            wanted.add(job.delivery_id)
    return wanted


def cancel(session: Session, job: Job, reason: str) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == job.delivery_id, Delivery.status == DeliveryStatus.SENDING)
        .values(
            status=DeliveryStatus.CANCELLED,
            last_error=reason,
            lease_owner=None,
            lease_expires_at=None,
        )
    )


def release(session: Session, jobs: Sequence[Job], worker: str) -> None:
    """Hand back claimed deliveries that were not attempted (the worker is stopping), so that they
    need not wait for the lease to expire."""
    session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_([job.delivery_id for job in jobs]),
            Delivery.status == DeliveryStatus.SENDING,
            Delivery.lease_owner == worker,
        )
        .values(
            status=DeliveryStatus.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            attempts=Delivery.attempts - 1,
        )
        .execution_options(synchronize_session=False)
    )


def record(
    session: Session,
    job: Job,
    result: DeliveryResult,
    now: datetime,
    worker: str,
    policy: RetryPolicy,
) -> str:
    """Write one message's outcome; returns the delivery's new status."""
    delivery = session.get(Delivery, job.delivery_id)
    if (
        delivery is None
        or delivery.status != DeliveryStatus.SENDING
        or delivery.lease_owner != worker
    ):
        # Our lease ran out and another worker took the message over: its outcome counts.
        return delivery.status if delivery else DeliveryStatus.CANCELLED
    delivery.lease_owner, delivery.lease_expires_at = None, None
    delivery.smtp_code = result.code
    if result.outcome == Outcome.SENT:
        delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, now, None
    elif result.outcome == Outcome.PERMANENT:
        delivery.status, delivery.last_error = DeliveryStatus.FAILED, result.detail
        suppress(
            session,
            job.email,
            SuppressionReason.HARD_BOUNCE,
            now,
            detail=f"{result.code or ''} {result.detail}".strip(),
        )
    elif should_give_up(delivery.first_attempt_at or now, now, policy):
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = f"gave up after {delivery.attempts} attempts: {result.detail}"
    else:
        delivery.status, delivery.last_error = DeliveryStatus.PENDING, result.detail
        delivery.next_attempt_at = retry_at(delivery.attempts, now, policy)
    if delivery.kind == DeliveryKind.LESSON and delivery.status in (
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
    ):
        _schedule_following(session, delivery, now)
    return delivery.status


def _schedule_following(session: Session, delivery: Delivery, now: datetime) -> None:
    """The next lesson: a cadence after this one was due, or after it went out if very late."""
    enrollment = delivery.enrollment
    if enrollment.status not in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED):
        return
    keys, _ = _lesson_orders(session, {enrollment.course_id})[enrollment.course_id]
    if keys and delivery.lesson is not None and delivery.lesson.key == keys[-1]:
        enrollment.status, enrollment.ended_at = EnrollmentStatus.COMPLETED, now
        enrollment.next_due_at = None
        return
    enrollment.next_due_at = following_lesson_due(
        delivery.due_at,
        now,
        ZoneInfo(enrollment.subscriber.timezone),
        rhythm_of(enrollment.course.settings),
    )


def _lesson_orders(
    session: Session, course_ids: set[int]
) -> dict[int, tuple[list[str], dict[str, int]]]:
    orders: dict[int, tuple[list[str], dict[str, int]]] = {cid: ([], {}) for cid in course_ids}
    for course_id, key, lesson_id in session.execute(
        select(Lesson.course_id, Lesson.key, Lesson.id)
        .where(Lesson.course_id.in_(course_ids), Lesson.retired_at.is_(None))
        .order_by(Lesson.course_id, Lesson.position)
    ):
        orders[course_id][0].append(key)
        orders[course_id][1][key] = lesson_id
    return orders


def _histories(session: Session, enrollment_ids: list[int]) -> dict[int, list[str]]:
    histories: dict[int, list[str]] = defaultdict(list)
    for enrollment_id, key in session.execute(
        select(Delivery.enrollment_id, Lesson.key)
        .join(Lesson, Delivery.lesson_id == Lesson.id)
        .where(
            Delivery.enrollment_id.in_(enrollment_ids),
            Delivery.kind == DeliveryKind.LESSON,
            Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]),
        )
        .order_by(Delivery.enrollment_id, Delivery.due_at, Delivery.id)
    ):
        histories[enrollment_id].append(key)
    return histories
