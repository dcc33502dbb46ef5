"""The JSON body of `GET /api/v1/subscribers/{id}/timeline`: `timeline.Timeline` as the API shows it.

Instants are UTC; each planned time also comes as the subscriber's wall-clock time with the zone's
name (`2026-03-24 08:00 Europe/Berlin`), the way the CLI prints it.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import Field

from dripcourse.app.timeline import EnrollmentTimeline, Hold, HoldReason, Timeline
from dripcourse.domain.cohort import cohort_note
from dripcourse.domain.schedule import PlannedLesson
from dripcourse.store.models import DeliveryKind, DeliveryStatus, EnrollmentStatus
from dripcourse.web.payloads import Output


def local_text(instant: datetime, zone: str) -> str:
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


class TimelineDelivery(Output):
    # Read off a `LedgerRow`: its `number` and `key` are the lesson's.
    lesson_number: int | None = Field(validation_alias="number")
    """The lesson's place in the course (a retired lesson: its last one); null for a
    confirmation email."""
    lesson_key: str | None = Field(validation_alias="key")
    kind: DeliveryKind
    """lesson (in the rhythm), extra (queued by an operator) or confirmation."""
    status: DeliveryStatus
    due_at: datetime
    next_attempt_at: datetime
    """When it is tried next, while pending."""
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    """Why the last attempt failed, or why it was cancelled."""
    message_id: str


class OwedLesson(Output):
    number: int
    key: str
    due_at: datetime
    """When the dispatcher will send it (UTC), if every pass runs on time."""
    local_time: str = Field(examples=["2026-03-24 08:00 Europe/Berlin"])
    """The same instant on the subscriber's clock, with their zone's name."""
    moved_from: date | None
    """The local date the rhythm landed on, when that is not one of the course's send days and
    the lesson moved to the next send day; null otherwise."""
    note: str | None = Field(examples=["moved from Sat to Mon: outside the send days"])
    """Why it is not on its rhythm's day; in a cohort course, also how it stands to the cohort
    (`behind the cohort, which had it Mon 01 Mar`); null when there is nothing to say."""

    @classmethod
    def of(cls, lesson: PlannedLesson, zone: str) -> OwedLesson:
        notes = [lesson.moved_note(ZoneInfo(zone)), cohort_note(lesson, ZoneInfo(zone))]
        return cls(
            number=lesson.number,
            key=lesson.key,
            due_at=lesson.due_at,
            local_time=local_text(lesson.due_at, zone),
            moved_from=lesson.moved_from,
            note="; ".join(note for note in notes if note) or None,
        )


class LessonBeforeJoining(Output):
    number: int
    key: str
    cohort_date: datetime
    """When the cohort had it (UTC): the person joined the cohort course after that."""
    reason: str = Field(examples=["before you joined"])

    @classmethod
    def of(cls, lesson: PlannedLesson) -> LessonBeforeJoining:
        return cls(
            number=lesson.number,
            key=lesson.key,
            cohort_date=lesson.due_at,
            reason=lesson.skipped or "",
        )


class HeldLesson(Output):
    number: int
    key: str


class HoldOut(Output):
    reason: HoldReason
    """paused; suppressed (the address must not be mailed); unconfirmed (waiting for the double
    opt-in); unscheduled (no time is set, which the dispatcher never leaves behind)."""
    since: datetime | None
    detail: str
    """For a suppression, its reason: hard_bounce, complaint, unsubscribed, manual, forgotten."""
    lessons: list[HeldLesson]
    """The lessons held, in sending order."""

    @classmethod
    def of(cls, hold: Hold) -> HoldOut:
        return cls(
            reason=hold.reason,
            since=hold.since,
            detail=hold.detail,
            lessons=[HeldLesson(number=number, key=key) for number, key in hold.lessons],
        )


class SkippedLesson(Output):
    number: int
    key: str
    audience: str
    """Whom the lesson is for (`for level returning`): this person is outside it, by their field
    values today, and the next lesson for them goes at its time instead."""


class EnrollmentTimelineOut(Output):
    course: str
    title: str
    status: EnrollmentStatus
    since: datetime
    """When it began (confirmed, else signed up), or when it paused or ended."""
    deliveries: list[TimelineDelivery]
    """Every message of this enrolment in the ledger, by due time: sent, failed, cancelled, and
    those waiting to go (pending, retrying, sending)."""
    owed: list[OwedLesson]
    """The lessons still to come in the rhythm, at their planned times; empty while held."""
    held: HoldOut | None
    """Why the lessons still owed are not going out; null when they are."""
    before_joining: list[LessonBeforeJoining] = []
    """Lessons this person is not owed: in a cohort course joined in progress, those the cohort
    had before they joined."""
    skipped: list[SkippedLesson] = []
    """The lessons for an audience this person is outside: never sent to them."""

    @classmethod
    def of(cls, enrollment: EnrollmentTimeline, zone: str) -> EnrollmentTimelineOut:
        return cls(
            course=enrollment.course,
            title=enrollment.title,
            status=EnrollmentStatus(enrollment.status),
            since=enrollment.since,
            deliveries=[TimelineDelivery.model_validate(row) for row in enrollment.ledger],
            owed=[OwedLesson.of(lesson, zone) for lesson in enrollment.owed],
            held=None if enrollment.held is None else HoldOut.of(enrollment.held),
            before_joining=[LessonBeforeJoining.of(lesson) for lesson in enrollment.before_joining],
            skipped=[SkippedLesson.model_validate(skip) for skip in enrollment.skipped],
        )


class TimelineOut(Output):
    id: int
    email: str
    name: str
    timezone: str
    now: datetime
    """The instant the plan was made at."""
    enrollments: list[EnrollmentTimelineOut]

    @classmethod
    def of(cls, found: Timeline) -> TimelineOut:
        return cls(
            id=found.subscriber_id,
            email=found.email,
            name=found.name,
            timezone=found.timezone,
            now=found.now,
            enrollments=[EnrollmentTimelineOut.of(e, found.timezone) for e in found.enrollments],
        )
