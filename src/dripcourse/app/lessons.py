"""Operator actions on single lessons: find one, preview it, send a test, queue it for people.

A test send is the lesson exactly as a subscriber gets it (the same builder, DKIM included), marked
`[Test]`, mailed to one address and kept out of the ledger and the report (the audit log says who
sent it, when a shell names them). A queued lesson is an extra delivery outside
the rhythm: the person's weekly lessons go on as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dripcourse.app import audit
from dripcourse.app.people import find_subscriber
from dripcourse.backends import load_backend
from dripcourse.config import Settings
from dripcourse.courses.catalog import get_course
from dripcourse.domain.delivery import Outcome
from dripcourse.domain.validation import check_timezone, clean_name, normalise_email
from dripcourse.errors import BadInput, Conflict, NotFound
from dripcourse.mail.builder import CourseView, MessageBuilder, sample_job
from dripcourse.mail.rendering import Recipient, RenderedLesson
from dripcourse.store.db import Database
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
)
from dripcourse.store.queries import jobs_for, new_delivery, secret_key

NEVER = datetime.fromtimestamp(0, UTC)
"""The due time of a delivery that exists only in memory."""
# Those who may still be sent an extra lesson: finished the course, or in it.
QUEUEABLE = (EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED)


def find_lesson(session: Session, course_slug: str, which: str) -> tuple[Course, Lesson]:
    """A lesson by its number in the course (`3`) or by its key (`knees`)."""
    course = get_course(session, course_slug)
    current = course.current_lessons
    if which.isascii() and which.isdigit():
        number = int(which)
        if not 1 <= number <= len(current):
            raise NotFound(f"course {course_slug!r} has lessons 1 to {len(current)}, not {which}")
        return course, current[number - 1]
    for lesson in course.lessons:
        if lesson.key == which:
            return course, lesson
    raise NotFound(f"course {course_slug!r} has no lesson {which!r}")


def number_of(course: Course, lesson: Lesson) -> int | None:
    """The lesson's number in the course today (1-based), None for a retired lesson."""
    current = [one.id for one in course.current_lessons]
    return current.index(lesson.id) + 1 if lesson.id in current else None


def preview(
    session: Session,
    builder: MessageBuilder,
    course_slug: str,
    which: str,
    *,
    email: str = "sample.reader@example.com",
    name: str = "Sam Sample",
) -> tuple[Course, Lesson, RenderedLesson]:
    """A lesson rendered for a sample reader, exactly as it would be sent (links included)."""
    address, clean = normalise_email(email), clean_name(name)
    course, lesson = find_lesson(session, course_slug, which)
    view = CourseView.of(course, builder.media_root)
    # An imaginary delivery, never due: nothing in a rendering depends on when.
    job = sample_job(view, lesson.key, Recipient(address, clean, "UTC"), NEVER)
    rendered, _ = builder.render(job, view)
    return course, lesson, rendered


TEST_PREFIX = "[Test] "
"""Put before the subject of a test send, so that nobody takes it for the real lesson."""


@dataclass(frozen=True)
class SentTestCopy:
    """A test send that the backend took: which lesson went to whom."""

    course: str
    number: int
    """The lesson's position in the course (a retired lesson keeps its old one)."""
    key: str
    to: str


def send_test(
    database: Database,
    settings: Settings,
    course_slug: str,
    which: str,
    to: str,
    *,
    name: str = "Sam Sample",
    timezone: str = "UTC",
    now: datetime,
    actor: str | None = None,
) -> SentTestCopy:
    """Mail lesson `which` of a course to `to` now, through the configured backend, marked
    `[Test]`; nothing goes into the ledger. A send the backend does not take is `BadInput`, with
    its reason. `actor`: who asked, for the audit log ("test sent", to whom, which lesson).

    Built in one short transaction (the secret key may be made on first use and is kept), sent
    outside any, as the dispatcher does; the audit entry is written in a short transaction of its
    own once the backend took the message, so that only a test that went is in the log.
    """
    address, zone = normalise_email(to), check_timezone(timezone)
    with database.transaction() as session:
        course, lesson = find_lesson(session, course_slug, which)
        key = secret_key(session, settings.secret_key)
        builder = MessageBuilder.for_sending(settings, key, verp=False)
        view = CourseView.of(course, builder.media_root)
        job = sample_job(view, lesson.key, Recipient(address, clean_name(name), zone), now)
    message = builder.build(job, view, now, subject_prefix=TEST_PREFIX)
    with load_backend(settings.email_backend) as backend:
        result = backend.send([message])[0]
    if result.outcome != Outcome.SENT:
        raise BadInput(f"test send to {address} failed ({result.outcome}): {result.detail}")
    sent = SentTestCopy(course_slug, lesson.position, lesson.key, address)
    if actor is not None:
        with database.transaction() as session:
            what = f"lesson {sent.number} ({sent.key}) of {sent.course}"
            audit.record(session, now, actor, "test sent", address, what)
    return sent


def queue_lesson(
    session: Session,
    course_slug: str,
    which: str,
    at: datetime,
    *,
    to: str | None = None,
    all_active: bool = False,
    actor: str | None = None,
    now: datetime | None = None,
) -> int:
    """Owe a lesson to one person or to everyone active, at `at`; returns how many were queued.

    Queueing the same lesson again for someone who is still waiting for it moves it, never doubles it.
    `actor` (with `now`, when it was done): who asked, for the audit log.
    """
    if (to is None) == (not all_active):
        raise BadInput("give exactly one of: one person's address, or everyone active")
    course, lesson = find_lesson(session, course_slug, which)
    if to is not None:
        subscriber = find_subscriber(session, to)
        enrollments = [e for e in subscriber.enrollments if e.course_id == course.id]
        if not enrollments:
            raise NotFound(f"{subscriber.email} is not enrolled in {course_slug!r}")
        if enrollments[0].status not in QUEUEABLE:
            raise Conflict(
                f"{subscriber.email} is {enrollments[0].status} in {course_slug!r}; "
                "nothing is sent to them"
            )
    else:
        enrollments = list(
            session.scalars(
                select(Enrollment).where(
                    Enrollment.course_id == course.id, Enrollment.status == EnrollmentStatus.ACTIVE
                )
            )
        )
    waiting = {
        d.enrollment_id: d
        for d in session.scalars(
            select(Delivery).where(
                Delivery.lesson_id == lesson.id,
                Delivery.kind == DeliveryKind.EXTRA,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.enrollment_id.in_([e.id for e in enrollments]),
            )
        )
    }
    for enrollment in enrollments:
        if enrollment.id in waiting:
            waiting[enrollment.id].due_at = waiting[enrollment.id].next_attempt_at = at
        else:
            # Made "at" its due time, as before: queue_lesson is given no other instant.
            session.add(new_delivery(enrollment, lesson.id, DeliveryKind.EXTRA, at, at))
    if actor is not None:
        what = (
            f"lesson {lesson.position} ({lesson.key}) of {course.slug}, due {at:%Y-%m-%d %H:%M} UTC"
        )
        whom = (
            [e.subscriber.email for e in enrollments]
            if to is not None
            else [f"course {course.slug}"]
        )
        for target in whom:
            audit.record(session, now or at, actor, "lesson queued", target, what)
    return len(enrollments)


def view_online(session: Session, builder: MessageBuilder, delivery_id: int) -> RenderedLesson:
    """A lesson as its recipient got it, for the "view in your browser" link."""
    jobs = [
        job
        for job in jobs_for(session, [delivery_id])
        if job.lesson_key is not None or job.kind == DeliveryKind.COMPLETION
    ]
    if not jobs:
        raise NotFound("this lesson is no longer available")
    course = session.scalars(
        select(Course).where(Course.id == jobs[0].course_id).options(selectinload(Course.lessons))
    ).one()
    if jobs[0].kind == DeliveryKind.COMPLETION and course.settings.completion is None:
        # completion.md was removed since: unlike a retired lesson, it is not kept.
        raise NotFound("this email is no longer available")
    rendered, _ = builder.render(jobs[0], CourseView.of(course, builder.media_root))
    return rendered
