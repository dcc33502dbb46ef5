"""Recording what the mail server answered: a group of outcomes written in one short transaction.

Sent lessons schedule the next one (a cadence after this one was due, or after it went out if very
late); temporary failures are retried with backoff until the retry window closes; permanent ones
(the server refused the recipient) suppress the address; a message we could not build or hand over
(`Outcome.UNSENDABLE`) fails alone and suppresses nothing. A worker whose lease was taken over
records nothing: the new owner's outcome counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from dripcourse.backends.base import DeliveryResult, Outcome
from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.delivery import Job
from dripcourse.domain.enrolment import RUNNING
from dripcourse.domain.schedule import (
    RetryPolicy,
    Rhythm,
    following_lesson_due,
    retry_at,
    should_give_up,
)
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    Lesson,
    SuppressionReason,
)
from dripcourse.store.queries import finish_enrollments, suppress

TAKEN_OVER = "taken-over"
"""The status reported for an outcome that was not recorded: another worker owns the delivery now."""


@dataclass(frozen=True, slots=True)
class CourseFacts:
    """What recording needs to know of a course: its rhythm and its last lesson."""

    rhythm: Rhythm
    last_key: str | None

    @classmethod
    def of(cls, settings: CourseSettings, lesson_keys: Sequence[str]) -> CourseFacts:
        return cls(settings.rhythm, lesson_keys[-1] if lesson_keys else None)


def record_outcomes(
    session: Session,
    outcomes: Sequence[tuple[Job, DeliveryResult]],
    now: datetime,
    worker: str,
    policy: RetryPolicy,
    facts: Mapping[int, CourseFacts] | None = None,
) -> list[str]:
    """Write each outcome; returns each delivery's new status, in order."""
    owned = set(
        session.scalars(
            select(Delivery.id).where(
                Delivery.id.in_([job.delivery_id for job, _ in outcomes]),
                Delivery.status == DeliveryStatus.SENDING,
                Delivery.lease_owner == worker,
            )
        )
    )
    known = dict(facts or {})
    rows: list[dict[str, Any]] = []
    following: list[dict[str, Any]] = []
    finished: list[int] = []
    statuses: list[str] = []
    for job, result in outcomes:
        if job.delivery_id not in owned:
            statuses.append(TAKEN_OVER)
            continue
        row = _row(session, job, result, now, policy)
        rows.append(row)
        statuses.append(row["status"])
        if job.kind == DeliveryKind.LESSON and row["status"] != DeliveryStatus.PENDING:
            course = known.get(job.course_id) or known.setdefault(
                job.course_id, _facts(session, job.course_id)
            )
            if job.lesson_key == course.last_key:
                finished.append(job.enrollment_id)
            else:
                due = following_lesson_due(job.due_at, now, ZoneInfo(job.timezone), course.rhythm)
                following.append({"id": job.enrollment_id, "next_due_at": due})
    _write(session, rows, following, finished, now)
    return statuses


def _write(
    session: Session,
    rows: list[dict[str, Any]],
    following: list[dict[str, Any]],
    finished: list[int],
    now: datetime,
) -> None:
    deliveries_table, enrollments_table = (
        cast(Table, Delivery.__table__),
        cast(Table, Enrollment.__table__),
    )
    deliveries, enrollments = deliveries_table.c, enrollments_table.c
    sent = [row for row in rows if row["status"] == DeliveryStatus.SENT]
    others = [row for row in rows if row["status"] != DeliveryStatus.SENT]
    if sent:
        # The common case, on the Core fast path: one executemany for the whole group.
        session.execute(
            update(deliveries_table)
            .where(deliveries.id == bindparam("b_id"))
            .values(
                status=DeliveryStatus.SENT,
                sent_at=now,
                smtp_code=bindparam("b_code"),
                last_error=None,
                lease_owner=None,
                lease_expires_at=None,
            ),
            [{"b_id": row["id"], "b_code": row["smtp_code"]} for row in sent],
        )
    if others:
        session.execute(update(Delivery).execution_options(synchronize_session=None), others)
    # Only enrolments still running move on: one that was unsubscribed meanwhile stays ended.
    if following:
        session.execute(
            update(enrollments_table)
            # An executemany takes no IN list: the running states are spelled out.
            .where(
                enrollments.id == bindparam("b_id"),
                or_(*(enrollments.status == s for s in RUNNING)),
            )
            .values(next_due_at=bindparam("b_due")),
            [{"b_id": row["id"], "b_due": row["next_due_at"]} for row in following],
        )
    finish_enrollments(session, finished, now)


def _row(
    session: Session, job: Job, result: DeliveryResult, now: datetime, policy: RetryPolicy
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": job.delivery_id,
        "smtp_code": result.code,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if result.outcome == Outcome.SENT:
        return row | {"status": DeliveryStatus.SENT, "sent_at": now, "last_error": None}
    if result.outcome == Outcome.UNSENDABLE:
        return row | {"status": DeliveryStatus.FAILED, "last_error": result.detail}
    if result.outcome == Outcome.PERMANENT:
        detail = f"{result.code or ''} {result.detail}".strip()
        suppress(session, job.email, SuppressionReason.HARD_BOUNCE, now, detail=detail)
        return row | {"status": DeliveryStatus.FAILED, "last_error": result.detail}
    if should_give_up(job.first_attempt_at, now, policy):
        error = f"gave up after {job.attempts} attempts: {result.detail}"
        return row | {"status": DeliveryStatus.FAILED, "last_error": error}
    return row | {
        "status": DeliveryStatus.PENDING,
        "last_error": result.detail,
        "next_attempt_at": retry_at(job.attempts, now, policy),
    }


def _facts(session: Session, course_id: int) -> CourseFacts:
    settings = session.scalars(select(Course.settings).where(Course.id == course_id)).one()
    keys = session.scalars(
        select(Lesson.key)
        .where(Lesson.course_id == course_id, Lesson.is_current)
        .order_by(Lesson.position)
    ).all()
    return CourseFacts.of(settings, keys)
