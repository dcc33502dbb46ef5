"""The rules of a cohort course (`domain/cohort.py`) applied to an enrolment in the store: when its
next lesson is due as it starts, restarts or resumes, and its plan as a timeline shows it.

Each function takes the session of the caller's transaction and never commits. For a course that is
not a cohort course they answer with the course's ordinary rhythm (`schedule.first_lesson_due`), so
that a caller asks one question whatever the course.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.domain.cohort import (
    Cohort,
    LateJoiners,
    current_lesson,
    due_after_history,
    lesson_due,
    plan_cohort,
    skipped_before,
)
from dripcourse.domain.schedule import PlannedLesson, Rhythm, first_lesson_due
from dripcourse.store.models import Delivery, DeliveryKind, DeliveryStatus, Enrollment
from dripcourse.store.queries import lesson_histories


def starting_due(session: Session, enrollment: Enrollment, now: datetime) -> datetime:
    """When the next lesson of an enrolment that (re)starts at `now` is due: the first slot from
    now, or in a cohort course the cohort's rule (lesson 1 never before the cohort's first date; a
    person coming back never ahead of the cohort, never two lessons in one day)."""
    settings = enrollment.course.settings
    zone = ZoneInfo(enrollment.subscriber.timezone)
    if settings.cohort is None:
        return first_lesson_due(now, zone, settings.rhythm)
    return _due_from_history(session, enrollment, settings.cohort, zone, settings.rhythm, now)


def resume_in_cohort(session: Session, enrollment: Enrollment, now: datetime) -> bool:
    """Back onto the cohort's rule after a pause (True), or False when the course is not a cohort
    course (the caller then keeps the wait that was left at the pause).

    The lesson owed next, or the one already in the ledger and not yet out, is due at the latest of
    its cohort date, the first slot from now, and the day after the last lesson went out: the
    lessons missed during the pause follow one per send day, never as a burst."""
    settings = enrollment.course.settings
    cohort = settings.cohort
    if cohort is None:
        return False
    zone, rhythm = ZoneInfo(enrollment.subscriber.timezone), settings.rhythm
    if enrollment.next_due_at is not None:
        enrollment.next_due_at = _due_from_history(session, enrollment, cohort, zone, rhythm, now)
    history = lesson_histories(session, [enrollment.id])[enrollment.id]
    last_sent = history[-1].at if history else None
    numbers = {lesson.id: n for n, lesson in enumerate(enrollment.course.current_lessons, 1)}
    for delivery in session.scalars(
        select(Delivery).where(
            Delivery.enrollment_id == enrollment.id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.kind == DeliveryKind.LESSON,
        )
    ):
        number = numbers.get(delivery.lesson_id or 0, 1)
        delivery.next_attempt_at = lesson_due(
            number, cohort, zone, rhythm, not_before=now, last_sent=last_sent
        )
    return True


def _due_from_history(
    session: Session,
    enrollment: Enrollment,
    cohort: Cohort,
    zone: ZoneInfo,
    rhythm: Rhythm,
    now: datetime,
) -> datetime:
    history = lesson_histories(session, [enrollment.id])[enrollment.id]
    keys = [lesson.key for lesson in enrollment.course.current_lessons]
    return due_after_history(
        keys,
        [had.key for had in history],
        history[-1].at if history else None,
        cohort,
        zone,
        rhythm,
        not_before=now,
    )


@dataclass(frozen=True, slots=True)
class CohortPlan:
    """A timeline's view of an enrolment in a cohort course."""

    before_joining: list[PlannedLesson]
    """Lessons not owed: joined in progress after the cohort had them (at the cohort's date)."""
    owed: list[PlannedLesson]
    """The lessons still to come, each with its cohort date."""


def plan_enrolment(
    cohort: Cohort,
    current: Sequence[str],
    history: Sequence[str],
    remaining: Sequence[tuple[int, str]],
    next_due: tuple[datetime, datetime] | None,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    in_flight: bool,
) -> CohortPlan:
    """The lessons before joining and those owed, of an enrolment that has had `history` (keys,
    the lesson in the ledger included) of the `current` lessons, `remaining` still owed.

    `next_due` is (when the next lesson is due, when it goes out) if the lessons are not held; with
    `in_flight` that is the lesson in the ledger, whose following ones are planned from its send.
    """
    numbers = {key: number for number, key in enumerate(current, 1)}
    first = min((numbers[key] for key in history if key in numbers), default=None)
    if (
        first is None
        and next_due is not None
        and cohort.late_joiners is LateJoiners.JOIN_IN_PROGRESS
    ):
        # No lesson had yet: the ledger will start them at the cohort's lesson of that instant.
        first = current_lesson(cohort, next_due[0], len(current), zone, rhythm)
        remaining = [(number, key) for number, key in remaining if number >= first]
    skipped: list[tuple[int, str]] = []
    if first is not None and cohort.late_joiners is LateJoiners.JOIN_IN_PROGRESS:
        skipped = [(n, key) for n, key in enumerate(current, 1) if n < first and key not in history]
    owed: list[PlannedLesson] = []
    if next_due is not None and remaining:
        due, sent = next_due
        if in_flight:
            number = remaining[0][0]
            due = lesson_due(number, cohort, zone, rhythm, not_before=sent, last_sent=sent)
            sent = max(due, sent)
        owed = plan_cohort(remaining, due, cohort, zone, rhythm, first_sent_at=sent)
    return CohortPlan(skipped_before(skipped, cohort, zone, rhythm), owed)
