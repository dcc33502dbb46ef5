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
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from dripcourse.backends.base import DeliveryResult, Outcome
from dripcourse.domain.cohort import Cohort, lesson_due
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
from dripcourse.domain.webhooks import Event, EventType, enrolment_data
from dripcourse.sending.sequels import finish
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    Lesson,
    SuppressionReason,
)
from dripcourse.store.outbox import emit, wanted
from dripcourse.store.queries import chunks, suppress, values_of, values_params

TAKEN_OVER = "taken-over"
"""The status reported for an outcome that was not recorded: another worker owns the delivery now."""


@dataclass(frozen=True, slots=True)
class CourseFacts:
    """What recording needs to know of a course: its rhythm and its last lesson (and, for a
    cohort course, the cohort and the order of its lessons)."""

    rhythm: Rhythm
    last_key: str | None
    cohort: Cohort | None = None
    keys: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: CourseSettings, lesson_keys: Sequence[str]) -> CourseFacts:
        last = lesson_keys[-1] if lesson_keys else None
        return cls(settings.rhythm, last, settings.cohort, tuple(lesson_keys))

    def following_due(self, job: Job, sent_at: datetime) -> datetime:
        """When the lesson after `job`'s is due, it having gone out at `sent_at`."""
        zone = ZoneInfo(job.timezone)
        if self.cohort is None:
            return following_lesson_due(job.due_at, sent_at, zone, self.rhythm)
        # The cohort's date of the lesson after this one, never on the day this one went out.
        # (A lesson retired since the claim has no place: the next day's slot is the floor.)
        number = self.keys.index(job.lesson_key) + 2 if job.lesson_key in self.keys else 1
        return lesson_due(
            number, self.cohort, zone, self.rhythm, not_before=sent_at, last_sent=sent_at
        )


def record_outcomes(
    session: Session,
    outcomes: Sequence[tuple[Job, DeliveryResult]],
    now: datetime,
    worker: str,
    policy: RetryPolicy,
    facts: Mapping[int, CourseFacts] | None = None,
) -> list[str]:
    """Write each outcome; returns each delivery's new status, in order.

    One statement writes the deliveries of the whole group, and only those this worker still
    leases (it returns their ids); one more moves their enrolments on. Suppressions (a permanent
    refusal) and completions are written only for what the first statement did write.
    """
    rows = [_row(job, result, now, policy) for job, result in outcomes]
    owned = _write_deliveries(session, rows, worker)
    known = dict(facts or {})
    following: list[dict[str, Any]] = []
    finished: dict[int, datetime] = {}
    statuses: list[str] = []
    for (job, result), row in zip(outcomes, rows, strict=True):
        if job.delivery_id not in owned:
            statuses.append(TAKEN_OVER)
            continue
        statuses.append(row["status"])
        if result.outcome == Outcome.PERMANENT:
            detail = f"{result.code or ''} {result.detail}".strip()
            suppress(session, job.email, SuppressionReason.HARD_BOUNCE, now, detail=detail)
        if job.kind == DeliveryKind.LESSON and row["status"] != DeliveryStatus.PENDING:
            course = known.get(job.course_id) or known.setdefault(
                job.course_id, _facts(session, job.course_id)
            )
            due = course.following_due(job, now)
            if job.lesson_key == course.last_key:
                finished[job.enrollment_id] = due  # the completion email keeps the rhythm
            else:
                following.append({"id": job.enrollment_id, "next_due_at": due})
    _schedule_following(session, following)
    finish(session, finished, now)
    _announce_lessons(session, outcomes, statuses, now)
    return statuses


_LESSON_EVENTS: dict[str, EventType] = {
    DeliveryStatus.SENT: EventType.LESSON_SENT,
    DeliveryStatus.FAILED: EventType.LESSON_FAILED,
}


_FAILURES = {Outcome.PERMANENT: "refused", Outcome.UNSENDABLE: "unsendable"}


def _announce_lessons(
    session: Session,
    outcomes: Sequence[tuple[Job, DeliveryResult]],
    statuses: Sequence[str],
    now: datetime,
) -> None:
    """`lesson.sent` and `lesson.failed` (refused, unsendable, or given up on; not a retry) into
    the webhook outbox: with no endpoint nothing is read or written; with some, one read of the
    enrolments and lessons and one INSERT, whatever the size of the group."""
    settled = [
        (job, result, _LESSON_EVENTS[status])
        for (job, result), status in zip(outcomes, statuses, strict=True)
        if job.kind == DeliveryKind.LESSON and status in _LESSON_EVENTS
    ]
    if not settled or not wanted(session, {event for _, _, event in settled}):
        return
    facts = {
        delivery_id: (subscriber_id, slug, position)
        for delivery_id, subscriber_id, slug, position in session.execute(
            select(Delivery.id, Enrollment.subscriber_id, Course.slug, Lesson.position)
            .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
            .join(Course, Enrollment.course_id == Course.id)
            .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
            .where(Delivery.id.in_([job.delivery_id for job, _, _ in settled]))
        )
    }
    events = []
    for job, result, event in settled:
        subscriber_id, slug, position = facts[job.delivery_id]
        more: dict[str, Any] = {"lesson": job.lesson_key, "position": position}
        if event == EventType.LESSON_FAILED:
            more["reason"] = _FAILURES.get(result.outcome, "gave up")  # a temporary one, given up
        data = enrolment_data(subscriber_id, job.email, job.enrollment_id, slug, **more)
        events.append(Event(event, subscriber_id, data))
    emit(session, events, now)


_DELIVERY_COLUMNS = (
    "id",
    "status",
    "smtp_code",
    "last_error",
    "sent_at",
    "next_attempt_at",
    "provider_id",
)
_FOLLOWING_COLUMNS = ("id", "next_due_at")


def _write_deliveries(session: Session, rows: list[dict[str, Any]], worker: str) -> set[int]:
    """Write every row whose delivery this worker still leases; the ids of those written."""
    owned: set[int] = set()
    dialect = session.get_bind().dialect.name
    for group in chunks(rows):
        given = values_params("outcome", _DELIVERY_COLUMNS, group, dialect)
        statement = _record_deliveries(len(group), dialect)
        owned.update(session.scalars(statement, given | {"worker": worker}))
    return owned


@lru_cache(maxsize=16)
def _record_deliveries(count: int, dialect: str) -> Any:
    """The statement that records `count` outcomes, made once per size (compiled once):

        WITH outcome AS (SELECT column1 AS id, ... FROM (VALUES ...))
        UPDATE deliveries SET status = outcome.status, ..., lease_owner = NULL
        FROM outcome WHERE deliveries.id = outcome.id
          AND deliveries.status = 'sending' AND deliveries.lease_owner = :worker
        RETURNING deliveries.id

    The lease is tested in the statement that writes, so a lease taken over by another worker
    meanwhile is never overwritten. A NULL `sent_at`, `next_attempt_at` or `provider_id` keeps the
    stored one.
    """
    table = cast(Table, Delivery.__table__)
    outcome = values_of("outcome", table, _DELIVERY_COLUMNS, count, dialect)
    return (
        update(table)
        .where(
            table.c.id == outcome.c.id,
            table.c.status == DeliveryStatus.SENDING,
            table.c.lease_owner == bindparam("worker"),
        )
        .values(
            status=outcome.c.status,
            smtp_code=outcome.c.smtp_code,
            last_error=outcome.c.last_error,
            sent_at=func.coalesce(outcome.c.sent_at, table.c.sent_at),
            next_attempt_at=func.coalesce(outcome.c.next_attempt_at, table.c.next_attempt_at),
            provider_id=func.coalesce(outcome.c.provider_id, table.c.provider_id),
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(table.c.id)
    )


def _schedule_following(session: Session, following: list[dict[str, Any]]) -> None:
    """The next lesson's due time for each enrolment, in one statement."""
    dialect = session.get_bind().dialect.name
    for group in chunks(following):
        given = values_params("following", _FOLLOWING_COLUMNS, group, dialect)
        session.execute(_move_on(len(group), dialect), given)


@lru_cache(maxsize=16)
def _move_on(count: int, dialect: str) -> Any:
    # Only enrolments still running move on: one that was unsubscribed meanwhile stays ended.
    table = cast(Table, Enrollment.__table__)
    due = values_of("following", table, _FOLLOWING_COLUMNS, count, dialect)
    return (
        update(table)
        .where(
            table.c.id == due.c.id,
            table.c.status.in_(RUNNING),
        )
        .values(next_due_at=due.c.next_due_at)
    )


def _row(job: Job, result: DeliveryResult, now: datetime, policy: RetryPolicy) -> dict[str, Any]:
    """The delivery's new state (the columns of `_DELIVERY_COLUMNS`)."""
    row: dict[str, Any] = {
        "id": job.delivery_id,
        "smtp_code": result.code,
        "sent_at": None,
        "next_attempt_at": None,
        "provider_id": result.provider_id,
    }
    if result.outcome == Outcome.SENT:
        return row | {"status": DeliveryStatus.SENT, "sent_at": now, "last_error": None}
    if result.outcome in (Outcome.UNSENDABLE, Outcome.PERMANENT):
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
