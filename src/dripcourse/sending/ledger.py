"""The ledger's state changes, in the database: materialise what is owed, claim it, record outcomes.

Each function takes the session of one short transaction opened by `dispatch.py`. The claim step is the
one to read when reasoning about concurrency: on PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite the
`BEGIN IMMEDIATE` of every transaction (see `db.py`) makes a claim exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, func, or_, select, text, true, update
from sqlalchemy.orm import Session

from dripcourse.domain.audiences import Audiences
from dripcourse.domain.cohort import owed_at, owed_lesson
from dripcourse.domain.delivery import Job
from dripcourse.domain.policy import SENDABLE_WHILE, blocked_by, owed_delivery
from dripcourse.domain.validation import address_hash
from dripcourse.sending.sequels import finish
from dripcourse.store.db import upsert_insert
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Subscriber,
    Suppression,
)
from dripcourse.store.queries import (
    chunks,
    jobs_for,
    lesson_histories,
    make_message_id,
    values_of,
    values_params,
)

# What may be claimed at all (`policy.SENDABLE_WHILE`): paused and ended enrolments keep their
# deliveries, but nobody picks them up.
SENDABLE = and_(
    Delivery.enrollment_id == Enrollment.id,
    or_(
        *(
            and_(Delivery.kind == kind, Enrollment.status.in_(statuses))
            for kind, statuses in SENDABLE_WHILE.items()
        )
    ),
)


def materialise_due(session: Session, now: datetime, limit: int) -> int:
    """Put the next lesson of each enrolment whose time has come into the ledger.

    Returns how many due enrolments it handled (each leaves the due set: owed a lesson now, held
    because suppressed, or completed), so that a caller can loop until fewer than `limit` come back.

    One lesson per enrolment at a time: the following one is scheduled only once this one is sent
    or given up (`outcomes.record_outcomes`), so a downtime never ends in a burst.

    A batch costs a fixed number of statements, whatever its size: the due enrolments, their
    courses with their lessons, their histories, their suppressions, then one UPDATE and one
    INSERT (per 1,000 rows), and one more UPDATE if some enrolment has had every lesson.
    """
    query = (
        select(
            Enrollment.id,
            Enrollment.course_id,
            Enrollment.next_due_at,
            Subscriber.email,
            Subscriber.timezone,
            Enrollment.fields,
        )
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at <= now)
        .order_by(Enrollment.next_due_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Enrollment)
    due = session.execute(query).all()
    if not due:
        return 0
    ids = [row.id for row in due]
    courses = _lesson_orders(session, {row.course_id for row in due})
    histories = lesson_histories(session, ids)
    hashes = {row.email: address_hash(row.email) for row in due}
    suppressed = set(
        session.scalars(
            select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes.values()))
        )
    )
    owed: list[dict[str, Any]] = []
    finished: dict[int, datetime] = {}
    for row in due:
        if hashes[row.email] in suppressed:
            continue  # held: nothing is owed to a suppressed address
        course = courses[row.course_id]
        history = [had.key for had in histories[row.id]]
        # In a cohort course a late joiner's first lesson may be the cohort's current one. A
        # lesson for an audience they are outside is passed over: the next one for them is owed
        # at this same time, so they lose no week (domain/audiences.py).
        settings, zone = course.course.settings, ZoneInfo(row.timezone)
        is_for = course.audiences.is_for(row.fields, settings.fields)
        key = owed_lesson(
            course.keys, history, row.next_due_at, zone, settings.rhythm, settings.cohort, is_for
        )
        if key is None:
            # Its time came and no lesson is left: what follows the course takes this slot.
            finished[row.id] = row.next_due_at
            continue
        owed.append(
            owed_delivery(
                row.id,
                course.lesson_ids[key],
                DeliveryKind.LESSON,
                owed_at(
                    course.keys.index(key) + 1,
                    row.next_due_at,
                    zone,
                    settings.rhythm,
                    settings.cohort,
                ),
                now,
                make_message_id(course.course),
            )
        )
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(ids))
        .values(next_due_at=None)
        .execution_options(synchronize_session=False)
    )
    finish(session, finished, now)
    for rows in chunks(owed):
        # One INSERT ... SELECT of the batch, not an executemany: PostgreSQL would run one
        # INSERT per row.
        names, dialect = tuple(rows[0]), session.get_bind().dialect.name
        statement = _owe_once(upsert_insert(session), names, len(rows), dialect)
        session.execute(statement, values_params("owed", names, rows, dialect))
    return len(due)


@lru_cache(maxsize=16)
def _owe_once(insert: Any, names: tuple[str, ...], count: int, dialect: str) -> Any:
    """The INSERT of `count` owed rows: made once per size, so that SQLAlchemy compiles it once."""
    table = cast(Table, Delivery.__table__)
    owed = values_of("owed", table, names, count, dialect)
    # SQLite reads an ON CONFLICT after a bare SELECT as part of a join: a WHERE ends the SELECT.
    rows = select(*(owed.c[name] for name in names)).where(true())
    statement = insert(table).from_select(names, rows)
    # The partial unique index makes a lesson owed once per enrolment: a second worker's insert
    # is ignored, and a copy cancelled earlier (they had unsubscribed) is owed again.
    return statement.on_conflict_do_update(
        index_elements=["enrollment_id", "lesson_id"],
        index_where=text("kind = 'lesson'"),  # the partial index's own predicate
        set_={
            "status": DeliveryStatus.PENDING,
            "due_at": statement.excluded.due_at,
            "next_attempt_at": statement.excluded.next_attempt_at,
            "attempts": 0,
            "last_error": None,
            "first_attempt_at": None,
        },
        where=Delivery.status == DeliveryStatus.CANCELLED,
    )


def claim(session: Session, now: datetime, worker: str, limit: int, lease: timedelta) -> list[Job]:
    """Take up to `limit` deliveries that are due (or whose claim has expired) for this worker.

    One statement, the same on both databases but for one clause:

        WITH claimable AS (
            SELECT deliveries.id FROM deliveries JOIN enrollments ON <sendable>
            WHERE (status = 'pending' AND next_attempt_at <= :now)
               OR (status = 'sending' AND lease_expires_at <= :now)
            ORDER BY next_attempt_at LIMIT :limit
            [FOR UPDATE OF deliveries SKIP LOCKED]      -- PostgreSQL: workers never wait
        )
        UPDATE deliveries SET status = 'sending', lease_owner = :worker, ...
        WHERE id IN (SELECT id FROM claimable) RETURNING id

    SQLite has no row locks and needs none: every writer holds the database's write lock
    (`BEGIN IMMEDIATE`), so two claims never overlap there.
    """
    claimable = (
        select(Delivery.id)
        .join(Enrollment, SENDABLE)
        .where(
            or_(
                and_(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now),
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at <= now),
            )
        )
    )
    claimable = claimable.order_by(Delivery.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        claimable = claimable.with_for_update(skip_locked=True, of=Delivery)
    chosen = claimable.cte("claimable")
    ids = list(
        session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(select(chosen.c.id)))
            .values(
                status=DeliveryStatus.SENDING,
                lease_owner=worker,
                lease_expires_at=now + lease,
                attempts=Delivery.attempts + 1,
                last_attempt_at=now,
                first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    return jobs_for(session, ids) if ids else []


def still_wanted(session: Session, jobs: Sequence[Job]) -> set[int]:
    """The delivery ids among `jobs` that may still go out: checked right before sending, so an
    unsubscribe or a suppression that arrived after the claim is honoured."""
    hashes = {job.email: address_hash(job.email) for job in jobs}
    suppressed = dict(
        session.execute(
            select(Suppression.email_hash, Suppression.reason).where(
                Suppression.email_hash.in_(hashes.values())
            )
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
        blocked = blocked_by(job.kind, suppressed.get(hashes[job.email]))
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


@dataclass(frozen=True, slots=True)
class _LessonOrder:
    """A course as materialising needs it: its current lessons in order, whom each is for, and
    the course itself (for the Message-ID of what it owes)."""

    course: Course
    keys: list[str]
    lesson_ids: dict[str, int]
    audiences: Audiences


def _lesson_orders(session: Session, course_ids: set[int]) -> dict[int, _LessonOrder]:
    # One query for the courses and their current lessons (a course without any still comes).
    courses: dict[int, Course] = {}
    lessons: dict[int, list[tuple[str, int, dict[str, Any] | None]]] = {}
    for course, key, lesson_id, data in session.execute(
        select(Course, Lesson.key, Lesson.id, Lesson.data)
        .outerjoin(Lesson, and_(Lesson.course_id == Course.id, Lesson.is_current))
        .where(Course.id.in_(course_ids))
        .order_by(Course.id, Lesson.position)
    ):
        courses[course.id] = course
        rows = lessons.setdefault(course.id, [])
        if key is not None:
            rows.append((key, lesson_id, data))
    return {
        course_id: _LessonOrder(
            course,
            keys=[key for key, _, _ in lessons[course_id]],
            lesson_ids={key: lesson_id for key, lesson_id, _ in lessons[course_id]},
            audiences=Audiences.of((key, data) for key, _, data in lessons[course_id]),
        )
        for course_id, course in courses.items()
    }
