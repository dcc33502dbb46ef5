""" "Can't wait? Get the next lesson now": a lesson's signed link asks for the next one early.

`[schedule] allow_early = true` puts the link in each lesson but the last (the layout shows it;
`mail/builder` signs it with the enrolment and the lesson it was sent in). Following it shows a
page with a button (mail scanners fetch links, so a GET changes nothing); the button calls
`ask_early`, which makes the next lesson due now. The rhythm then continues from the early lesson:
the dispatcher schedules the one after it a cadence after it went out, as after any lesson
(`schedule.following_lesson_due`).

Once per lesson: asking again, or using an older lesson's link after the next one went out,
changes nothing and says so. So does a link of an enrolment that is paused, unsubscribed or
completed, of an address no lesson may go to (suppressed), or of a course that no longer allows it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.domain.policy import OPEN_DELIVERY, blocked_by
from dripcourse.domain.schedule import next_lesson
from dripcourse.errors import NotFound
from dripcourse.store.models import Delivery, DeliveryKind, Enrollment, EnrollmentStatus, Lesson
from dripcourse.store.queries import lesson_histories, suppression_of

EARLY_ACTOR = "subscriber (early-lesson link)"
EARLY_ACTION = "early lesson asked"


class Answer(enum.StrEnum):
    QUEUED = "queued"
    """The next lesson is due now: the scheduler sends it on its next pass."""
    ON_ITS_WAY = "on-its-way"
    """Already asked for, or already in the ledger: nothing changed."""
    ALREADY_SENT = "already-sent"
    """A later lesson than the link's went out already: nothing changed."""
    LAST = "last"
    """The link's lesson was the last one: there is nothing to get early."""
    NOT_RUNNING = "not-running"
    """The enrolment is paused, unsubscribed, completed or unconfirmed: nothing changed."""
    NOT_OFFERED = "not-offered"
    """The course no longer allows early lessons: nothing changed."""
    HELD = "held"
    """The address is suppressed (a bounce, a complaint, an operator): no lesson goes to it, so
    none is promised and nothing changed."""


@dataclass(frozen=True, slots=True)
class EarlyResult:
    answer: Answer
    course_title: str
    brand: str
    accent: str
    status: str
    """The enrolment's status, for the NOT_RUNNING answer."""
    next_title: str | None = None
    """The title of the lesson asked for, when there is one."""


@dataclass(frozen=True, slots=True)
class EarlyLink:
    """What a GET shows beside the button: nothing is changed to find it."""

    course_title: str
    brand: str
    accent: str


def early_link(session: Session, enrollment_id: int) -> EarlyLink:
    enrollment = _enrollment(session, enrollment_id, lock=False)
    settings = enrollment.course.settings
    return EarlyLink(settings.title, settings.brand, settings.accent)


def ask_early(session: Session, enrollment_id: int, lesson_id: int, now: datetime) -> EarlyResult:
    """Make the lesson after `lesson_id` due now for this enrolment, if that lesson is the last
    one they had and the next is not already owed or sent; an audit entry says so."""
    enrollment = _enrollment(session, enrollment_id, lock=True)
    course = enrollment.course
    settings = course.settings

    def answer(kind: Answer, next_title: str | None = None) -> EarlyResult:
        return EarlyResult(
            kind, settings.title, settings.brand, settings.accent, enrollment.status, next_title
        )

    if enrollment.status != EnrollmentStatus.ACTIVE:
        return answer(Answer.NOT_RUNNING)
    if not settings.allow_early:
        return answer(Answer.NOT_OFFERED)
    suppression = suppression_of(session, enrollment.subscriber.email)
    if blocked_by(DeliveryKind.LESSON, suppression.reason if suppression else None):
        return answer(Answer.HELD)
    lesson = session.get(Lesson, lesson_id)
    if lesson is None or lesson.course_id != course.id:
        raise NotFound("this link does not belong to a lesson of this course")
    current = [each.key for each in course.current_lessons]
    titles = {each.key: each.title for each in course.current_lessons}
    history = [had.key for had in lesson_histories(session, [enrollment.id])[enrollment.id]]
    in_ledger = session.scalar(
        select(Delivery.id).where(
            Delivery.enrollment_id == enrollment.id,
            Delivery.kind == DeliveryKind.LESSON,
            Delivery.status.in_(OPEN_DELIVERY),
        )
    )
    if lesson.key not in history:
        # Not had yet (the link of a lesson still in the ledger cannot exist) or never sent.
        return answer(Answer.ALREADY_SENT if history else Answer.ON_ITS_WAY)
    if history[-1] != lesson.key:
        return answer(Answer.ALREADY_SENT)
    following = next_lesson(current, history)
    if following is None:
        return answer(Answer.LAST)
    if in_ledger is not None or (
        enrollment.next_due_at is not None and enrollment.next_due_at <= now
    ):
        return answer(Answer.ON_ITS_WAY, titles.get(following))
    enrollment.next_due_at = now
    audit.record(
        session,
        now,
        EARLY_ACTOR,
        EARLY_ACTION,
        enrollment.subscriber.email,
        f"{course.slug}: lesson {following} asked for after lesson {lesson.key}",
    )
    return answer(Answer.QUEUED, titles.get(following))


def _enrollment(session: Session, enrollment_id: int, *, lock: bool) -> Enrollment:
    # Locked on PostgreSQL, so that two presses at once are one (SQLite's writer lock does it there).
    enrollment = session.get(Enrollment, enrollment_id, with_for_update=lock)
    if enrollment is None:
        raise NotFound("this link no longer leads anywhere: the subscription was removed")
    return enrollment
