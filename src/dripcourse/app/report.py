"""The course report: per lesson, how many were sent, failed, bounced, left, and clicked.

What each number counts (every delivery of a lesson, whether owed in the rhythm or queued by an
operator, since both reached the mail server alike; test sends are not in the ledger):

- sent: messages the mail server accepted (status `sent`), so it equals what the server received.
  A message that bounced later was still sent, and is counted here too;
- failed: messages that ended `failed`: refused for good (5xx) or given up after the retries;
- bounced: sent messages a hard bounce (5.x.x) was later reported for (`bounces.py`). Soft bounces
  are not counted: the remote server is still trying, and most of them arrive in the end;
- unsubscribed: people who left the course right after this lesson, that is, whose last lesson
  sent before they unsubscribed was this one. A complaint ("this is spam") counts as leaving; an
  enrolment ended because the address bounced does not, nobody chose that;
- clicked: people who followed at least one tracked link of this lesson (`clicks.py`); None when
  the course does not track clicks and never did;
- audience and skipped, for a lesson written for an audience (front matter `audience`): whom it
  is for (`for level returning`), and how many of the course's people (enrolments not ended by
  unsubscribing) are outside it by their field values today, and skip it (`audience_plans.py`).

Lessons come in their order in the course, then retired lessons that were ever sent (number None).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dripcourse.app.audience_plans import audience_of, reach
from dripcourse.courses.catalog import get_course
from dripcourse.domain.audiences import describe
from dripcourse.mail.links import tracks_clicks
from dripcourse.store import tallies
from dripcourse.store.models import (
    Click,
    DeliveryKind,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Subscriber,
    Suppression,
    SuppressionReason,
)

LESSON_KINDS = (DeliveryKind.LESSON, DeliveryKind.EXTRA)


@dataclass(frozen=True, slots=True)
class LessonReport:
    lesson: int | None
    """The lesson's number in the course today; None for a retired lesson."""
    key: str
    subject: str
    """As written in the lesson file (personalisation left in)."""
    sent: int
    failed: int
    bounced: int
    unsubscribed: int
    clicked: int | None
    audience: str | None = None
    """Whom the lesson is for, when it is for an audience only."""
    skipped: int | None = None
    """How many of the course's people skip it (outside its audience); None without one."""


def course_report(session: Session, slug: str) -> list[LessonReport]:
    """The report of course `slug` (`NotFound` if there is none)."""
    course = get_course(session, slug)
    lessons = list(course.lessons)
    ids = [lesson.id for lesson in lessons]
    outcomes = _outcomes(session, ids)
    left = _left_after(session, course.id)
    clicked = _clickers(session, ids)
    counts_clicks = tracks_clicks(course.settings) or bool(clicked)
    current = [lesson for lesson in lessons if lesson.is_current]
    retired = [lesson for lesson in lessons if not lesson.is_current]
    numbered: list[tuple[int | None, Lesson]] = list(enumerate(current, start=1))
    numbered += [(None, lesson) for lesson in retired if lesson.id in outcomes]
    audiences = audience_of(current).by_key
    outside = reach(session, course)
    report = []
    for number, lesson in numbered:
        sent, failed, bounced = outcomes.get(lesson.id, (0, 0, 0))
        report.append(
            LessonReport(
                lesson=number,
                key=lesson.key,
                subject=lesson.subject,
                sent=sent,
                failed=failed,
                bounced=bounced,
                unsubscribed=left.get(lesson.id, 0),
                clicked=clicked.get(lesson.id, 0) if counts_clicks else None,
                audience=describe(audiences[lesson.key])
                if number and lesson.key in audiences
                else None,
                skipped=outside[lesson.key][1] if number and lesson.key in outside else None,
            )
        )
    return report


def _outcomes(session: Session, lesson_ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
    """Sent, failed and hard-bounced deliveries of each lesson that has any: counts the database
    keeps as deliveries change (`store/tallies.py`), not a count over the whole ledger."""
    return tallies.lesson_outcomes(session, lesson_ids)


def _left_after(session: Session, course_id: int) -> dict[int, int]:
    """How many unsubscribed right after each lesson: the lesson of the last delivery sent to
    them before they left (`Enrollment.left_after_lesson_id`, kept by the database as
    enrolments and deliveries change), counted over an index.

    Those whose address was suppressed for bouncing when (or before) the enrolment ended were
    ended by that, not by a choice: they are few, found from the suppressions (read once, since
    no index matches an address in any case to a mailbox key) and taken off."""
    left = {
        lesson: count
        for lesson, count in session.execute(
            select(Enrollment.left_after_lesson_id, func.count())
            .where(
                Enrollment.course_id == course_id,
                Enrollment.status == EnrollmentStatus.UNSUBSCRIBED,
                Enrollment.left_after_lesson_id.is_not(None),
            )
            .group_by(Enrollment.left_after_lesson_id)
        )
        if lesson is not None
    }
    bounced: dict[str, list[datetime]] = {}
    for email, created_at in session.execute(
        select(Suppression.email, Suppression.created_at).where(
            Suppression.reason == SuppressionReason.HARD_BOUNCE, Suppression.email.is_not(None)
        )
    ):
        if email is not None:  # (the query leaves out the forgotten: this is for the types)
            bounced.setdefault(email.lower(), []).append(created_at)
    if not bounced:
        return left
    # The course's leavers by address first (no instants to read), then the few who bounced.
    leavers = session.execute(
        select(Enrollment.id, Subscriber.email_key)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .where(
            Enrollment.course_id == course_id,
            Enrollment.status == EnrollmentStatus.UNSUBSCRIBED,
            Enrollment.left_after_lesson_id.is_not(None),
        )
    ).all()
    suspects = {enrollment: key for enrollment, key in leavers if key in bounced}
    ids = list(suspects)
    for start in range(0, len(ids), 500):
        for enrollment, ended_at, lesson in session.execute(
            select(Enrollment.id, Enrollment.ended_at, Enrollment.left_after_lesson_id).where(
                Enrollment.id.in_(ids[start : start + 500])
            )
        ):
            created = bounced[suspects[enrollment]]
            bounced_out = ended_at is not None and any(c <= ended_at for c in created)
            if bounced_out and lesson is not None:
                left[lesson] -= 1
    return {lesson: count for lesson, count in left.items() if count}


def _clickers(session: Session, lesson_ids: Iterable[int]) -> dict[int, int]:
    """People who clicked at least one link, for each lesson clicked at all."""
    rows = session.execute(
        select(Click.lesson_id, func.count(func.distinct(Click.enrollment_id)))
        .where(Click.lesson_id.in_(list(lesson_ids)))
        .group_by(Click.lesson_id)
    ).all()
    return {row[0]: int(row[1]) for row in rows if row[0] is not None}
