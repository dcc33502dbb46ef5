"""A person's course, lesson by lesson: what they had, what is on its way, and when the rest is due.

Two views share one pure planner, `schedule.plan_lessons`: the timeline of a subscriber (their ledger, then
the lessons still owed, each at the time the dispatcher will send it, or the reason it is held) and
the calendar of a course (what someone subscribing at a given instant would get, read from the
course files alone). The planner only chains the rules `subscriptions`
and `outcomes` apply when a person starts and each time a lesson goes out, so a plan is what the
dispatcher will do if every pass runs on time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dripcourse.app.audience_plans import Skip, audience_of, skips
from dripcourse.app.cohorts import plan_enrolment
from dripcourse.app.people import find_subscriber, get_subscriber
from dripcourse.courses.catalog import load_sources
from dripcourse.domain.audiences import remaining_for
from dripcourse.domain.cohort import Cohort, parse_late_joiners, plan_from_joining
from dripcourse.domain.fields import check_values, complete
from dripcourse.domain.policy import HAD, OPEN_DELIVERY
from dripcourse.domain.schedule import (
    PlannedLesson,
    Rhythm,
    every_day,
    first_lesson_due,
    following_on_rhythm,
    plan_from_start,
    plan_lessons,
)
from dripcourse.domain.validation import check_timezone
from dripcourse.errors import BadInput, NotFound
from dripcourse.store.models import (
    Delivery,
    DeliveryKind,
    Enrollment,
    EnrollmentStatus,
    Subscriber,
)
from dripcourse.store.queries import lesson_histories, suppression_of

HoldReason = Literal["paused", "suppressed", "unconfirmed", "unscheduled"]


# -- a subscriber's timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    """A message of this enrolment in the ledger: sent, given up, cancelled, or waiting to go."""

    number: int | None
    """The lesson's place in the course today (a retired lesson: its last one); None for a
    confirmation email."""
    key: str | None
    kind: str
    """lesson (in the rhythm), extra (queued by an operator) or confirmation."""
    status: str
    due_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_attempt_at: datetime | None
    attempts: int
    message_id: str
    last_error: str | None

    @property
    def waiting(self) -> bool:
        return self.status in OPEN_DELIVERY

    @property
    def at(self) -> datetime:
        """The instant that matters: sent, next try, last try, else when it was due."""
        if self.sent_at is not None:
            return self.sent_at
        if self.waiting:
            return self.next_attempt_at
        return self.last_attempt_at or self.due_at


@dataclass(frozen=True)
class Hold:
    """Why the lessons still owed are not going out."""

    reason: HoldReason
    """paused; suppressed (the address must not be mailed); unconfirmed (waiting for the double
    opt-in); unscheduled (no time is set, which the dispatcher never leaves behind)."""
    since: datetime | None
    detail: str = ""
    """For a suppression, why: hard_bounce, complaint, unsubscribed, manual, forgotten."""
    lessons: list[tuple[int, str]] = field(default_factory=list)
    """The lessons held, (number, key) in sending order."""


@dataclass(frozen=True)
class EnrollmentTimeline:
    course: str
    title: str
    status: str
    since: datetime
    """When it began (confirmed, else signed up), or when it paused or ended."""
    ledger: list[LedgerRow]
    """Every message of this enrolment, by due time."""
    owed: list[PlannedLesson]
    """The lessons still to come in the rhythm, at their planned times (empty while held)."""
    held: Hold | None
    before_joining: list[PlannedLesson] = field(default_factory=list)
    """Lessons not owed to this person: in a cohort course they joined in progress, the ones the
    cohort had before (each at the cohort's date, `skipped` saying why)."""
    skipped: list[Skip] = field(default_factory=list)
    """The lessons for an audience they are outside (by their field values today): never sent
    to them, the next lesson goes in their place (domain/audiences.py)."""


@dataclass(frozen=True)
class Timeline:
    subscriber_id: int
    email: str
    name: str
    timezone: str
    now: datetime
    enrollments: list[EnrollmentTimeline]


def timeline(session: Session, email: str, now: datetime) -> Timeline:
    """The timeline of the person with this address (`NotFound` if nobody has it)."""
    return _timeline(session, find_subscriber(session, email), now)


def timeline_by_id(session: Session, subscriber_id: int, now: datetime) -> Timeline:
    return _timeline(session, get_subscriber(session, subscriber_id), now)


def _timeline(session: Session, subscriber: Subscriber, now: datetime) -> Timeline:
    enrollments = session.scalars(
        select(Enrollment)
        .where(Enrollment.subscriber_id == subscriber.id)
        .options(
            selectinload(Enrollment.course),
            selectinload(Enrollment.deliveries).selectinload(Delivery.lesson),
        )
    ).all()
    suppression = suppression_of(session, subscriber.email)
    suppressed = None if suppression is None else (suppression.reason, suppression.created_at)
    return Timeline(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        name=subscriber.name,
        timezone=subscriber.timezone,
        now=now,
        enrollments=[
            _enrollment_timeline(session, e, ZoneInfo(subscriber.timezone), suppressed, now)
            for e in sorted(enrollments, key=lambda e: (e.created_at, e.course.slug))
        ],
    )


def _enrollment_timeline(
    session: Session,
    enrollment: Enrollment,
    zone: ZoneInfo,
    suppressed: tuple[str, datetime] | None,
    now: datetime,
) -> EnrollmentTimeline:
    course = enrollment.course
    current = [lesson.key for lesson in course.current_lessons]
    numbers = {key: number for number, key in enumerate(current, 1)}
    ledger = sorted(
        (_row(delivery, numbers) for delivery in enrollment.deliveries),
        key=lambda row: (row.due_at, row.at),
    )
    # The lesson already in the ledger and not yet out: the rest follow it.
    in_flight = next(
        (
            d
            for d in enrollment.deliveries
            if d.kind == DeliveryKind.LESSON and d.status in OPEN_DELIVERY
        ),
        None,
    )
    history = [had.key for had in lesson_histories(session, [enrollment.id])[enrollment.id]]
    if in_flight is not None and in_flight.lesson is not None:
        history.append(in_flight.lesson.key)
    audiences = audience_of(course.current_lessons)
    is_for = audiences.is_for(enrollment.fields, course.settings.fields)
    remaining, _passed = remaining_for(current, history, is_for)
    owed: list[PlannedLesson] = []
    held = _hold(enrollment, suppressed, remaining)
    before_joining: list[PlannedLesson] = []
    running = held is None and bool(remaining) and enrollment.status == EnrollmentStatus.ACTIVE
    if course.settings.cohort is not None:
        next_due = _next_due(enrollment, in_flight, now) if running else None
        plan = plan_enrolment(
            course.settings.cohort,
            current,
            history,
            remaining,
            next_due,
            zone,
            course.settings.rhythm,
            in_flight=in_flight is not None,
        )
        before_joining, owed = plan.before_joining, plan.owed
    elif running:
        rhythm = course.settings.rhythm
        if in_flight is not None:
            # It goes out at its next attempt (or the next pass); the rest follow from then.
            sent = max(in_flight.next_attempt_at, now)
            following, on_rhythm = following_on_rhythm(in_flight.due_at, sent, zone, rhythm)
            owed = plan_lessons(remaining, following, zone, rhythm, first_on_rhythm=on_rhythm)
        elif enrollment.next_due_at is not None:
            owed = plan_lessons(
                remaining,
                enrollment.next_due_at,
                zone,
                rhythm,
                first_sent_at=max(enrollment.next_due_at, now),
                first_on_rhythm=_on_rhythm_of_next(session, enrollment, zone, rhythm),
            )
    return EnrollmentTimeline(
        course=course.slug,
        title=course.title,
        status=enrollment.status,
        since=_since(enrollment),
        ledger=ledger,
        owed=owed,
        held=held,
        before_joining=before_joining,
        skipped=skips(current, history, is_for, audiences),
    )


def _next_due(
    enrollment: Enrollment, in_flight: Delivery | None, now: datetime
) -> tuple[datetime, datetime] | None:
    """(When the next lesson is due, when it goes out), of the lesson in the ledger if any."""
    if in_flight is not None:
        return in_flight.due_at, max(in_flight.next_attempt_at, now)
    if enrollment.next_due_at is None:
        return None
    return enrollment.next_due_at, max(enrollment.next_due_at, now)


def _hold(
    enrollment: Enrollment,
    suppressed: tuple[str, datetime] | None,
    remaining: list[tuple[int, str]],
) -> Hold | None:
    if not remaining or enrollment.status in (
        EnrollmentStatus.COMPLETED,
        EnrollmentStatus.UNSUBSCRIBED,
    ):
        return None
    # A person who has not confirmed may lift their own unsubscribe by confirming: that comes first.
    if enrollment.status == EnrollmentStatus.PENDING:
        return Hold("unconfirmed", enrollment.created_at, lessons=remaining)
    if suppressed is not None:
        reason, since = suppressed
        return Hold("suppressed", since, detail=reason, lessons=remaining)
    if enrollment.status == EnrollmentStatus.PAUSED:
        return Hold("paused", enrollment.paused_at, lessons=remaining)
    if enrollment.next_due_at is None and not any(
        d.kind == DeliveryKind.LESSON and d.status in OPEN_DELIVERY for d in enrollment.deliveries
    ):
        return Hold("unscheduled", None, lessons=remaining)
    return None


def _on_rhythm_of_next(
    session: Session, enrollment: Enrollment, zone: ZoneInfo, rhythm: Rhythm
) -> datetime | None:
    """Where the rhythm alone puts the next lesson, for telling whether it was moved off a day
    outside the send days; None when its time came from elsewhere (a resume, a new zone)."""
    done = [d for d in enrollment.deliveries if d.kind == DeliveryKind.LESSON and d.status in HAD]
    if not done:
        start = enrollment.confirmed_at or enrollment.created_at
        if enrollment.next_due_at != first_lesson_due(start, zone, rhythm):
            return None
        return first_lesson_due(start, zone, every_day(rhythm))
    last = max(done, key=lambda d: (d.due_at, d.id))
    sent = last.sent_at or last.last_attempt_at or last.due_at
    following, on_rhythm = following_on_rhythm(last.due_at, sent, zone, rhythm)
    return on_rhythm if following == enrollment.next_due_at else None


def _since(enrollment: Enrollment) -> datetime:
    if enrollment.status == EnrollmentStatus.PAUSED and enrollment.paused_at is not None:
        return enrollment.paused_at
    if enrollment.ended_at is not None and enrollment.status in (
        EnrollmentStatus.COMPLETED,
        EnrollmentStatus.UNSUBSCRIBED,
    ):
        return enrollment.ended_at
    return enrollment.confirmed_at or enrollment.created_at


def _row(delivery: Delivery, numbers: dict[str, int]) -> LedgerRow:
    lesson = delivery.lesson
    return LedgerRow(
        number=None if lesson is None else numbers.get(lesson.key, lesson.position),
        key=None if lesson is None else lesson.key,
        kind=delivery.kind,
        status=delivery.status,
        due_at=delivery.due_at,
        next_attempt_at=delivery.next_attempt_at,
        sent_at=delivery.sent_at,
        last_attempt_at=delivery.last_attempt_at,
        attempts=delivery.attempts,
        message_id=delivery.message_id,
        last_error=delivery.last_error,
    )


# -- a course's calendar ------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    course: str
    title: str
    timezone: str
    start: datetime
    rhythm: Rhythm
    lessons: list[PlannedLesson]
    cohort: Cohort | None = None
    """A cohort course's start and the way late joiners are placed (the course's, or the one
    asked for); `lessons` then has each lesson's cohort date, the skipped ones included."""
    skipped: list[Skip] = field(default_factory=list)
    """The lessons for an audience this person is outside (their `fields`)."""
    fields: dict[str, str] = field(default_factory=dict)
    """Every field's value the calendar is for, the defaults filled in."""


def course_calendar(
    courses_dir: Path,
    slug: str,
    start: datetime,
    timezone: str | None = None,
    *,
    late_joiners: str | None = None,
    fields: Mapping[str, object] | None = None,
) -> Calendar:
    """The send times of someone confirmed at `start` in `timezone` (default: the course's zone)
    with these custom field values (checked like a sign-up's; default: none given), from the
    course files under `courses_dir`: nothing is read from or written to the database.

    In a cohort course, `late_joiners` previews the other way of placing late joiners without
    editing the course (BadInput for a course that is not a cohort course)."""
    sources = {source.slug: source for source in load_sources(courses_dir)}
    source = sources.get(slug)
    if source is None:
        known = ", ".join(sorted(sources)) or "none"
        shown = slug.encode("utf-8", "backslashreplace").decode()
        raise NotFound(f"no course {shown!r} in {courses_dir} (courses there: {known})")
    if source.problems:
        raise BadInput(
            f"course {slug!r} has {len(source.problems)} problem(s); first: {source.problems[0]} "
            "(run `dripcourse courses check`)"
        )
    settings = source.checked_settings
    zone_name = check_timezone(timezone) if timezone else settings.timezone
    rhythm = settings.rhythm
    given = check_values(fields or {}, settings.fields, require=False)
    keys = [lesson.key for lesson in source.lessons]
    audiences = audience_of(source.lessons)
    is_for = audiences.is_for(given, settings.fields)
    lessons, _passed = remaining_for(keys, [], is_for)
    cohort = _cohort_asked(settings.cohort, late_joiners, slug)
    zone = ZoneInfo(zone_name)
    return Calendar(
        course=slug,
        title=settings.title,
        timezone=zone_name,
        start=start,
        rhythm=rhythm,
        lessons=plan_from_start(lessons, start, zone, rhythm)
        if cohort is None
        else plan_from_joining(lessons, start, cohort, zone, rhythm, lesson_count=len(keys)),
        cohort=cohort,
        skipped=skips(keys, [], is_for, audiences),
        fields=complete(given, settings.fields),
    )


def _cohort_asked(cohort: Cohort | None, late_joiners: str | None, slug: str) -> Cohort | None:
    if late_joiners is None:
        return cohort
    if cohort is None:
        raise BadInput(
            f"course {slug!r} is not a cohort course (no [schedule] starts_on): "
            "everyone starts when they sign up, there are no late joiners",
            field="late_joiners",
        )
    try:
        return replace(cohort, late_joiners=parse_late_joiners(late_joiners))
    except ValueError as exc:
        raise BadInput(f"late joiners: {exc}", field="late_joiners") from None
