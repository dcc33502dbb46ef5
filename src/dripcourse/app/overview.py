"""Read-only views for operators: who is subscribed, what is due next, how the ledger stands.

Plain data out (dataclasses), so the CLI prints them and the HTTP API serialises the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from dripcourse.app.audience_plans import audience_of
from dripcourse.app.people import find_subscriber, get_subscriber
from dripcourse.courses.catalog import get_course
from dripcourse.domain.cohort import owed_lesson
from dripcourse.domain.states import parse_enrollment_status
from dripcourse.domain.validation import mailbox_key, search_key
from dripcourse.store import tallies
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    Subscriber,
    Suppression,
)
from dripcourse.store.queries import lesson_histories


@dataclass(frozen=True)
class QueueEntry:
    due_at: datetime
    email: str
    timezone: str
    course: str
    lesson: str
    """`3 knees` or, for a confirmation, `confirmation`."""
    state: str
    """owed (in the rhythm, not yet in the ledger), pending, retry (failed before), sending."""


@dataclass(frozen=True)
class Status:
    subscribers: int
    enrollments: dict[str, int]
    deliveries: dict[str, int]
    suppressions: dict[str, int]
    failed_last_day: int
    recent_failures: list[tuple[str, str, str]]
    """(email, lesson, error) of the latest failed deliveries."""
    next_due: datetime | None


def upcoming(session: Session, limit: int = 50) -> list[QueueEntry]:
    """What is due next, soonest first: ledger rows waiting to go, and lessons owed in the rhythm."""
    entries: list[QueueEntry] = []
    waiting = session.scalars(
        select(Delivery)
        .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .options(
            selectinload(Delivery.enrollment).selectinload(Enrollment.subscriber),
            selectinload(Delivery.enrollment).selectinload(Enrollment.course),
            selectinload(Delivery.lesson),
        )
    ).all()
    for delivery in waiting:
        enrollment = delivery.enrollment
        state = (
            delivery.status if delivery.attempts == 0 or delivery.status == "sending" else "retry"
        )
        if enrollment.status == EnrollmentStatus.PAUSED:
            state = "paused"
        entries.append(
            QueueEntry(
                delivery.next_attempt_at,
                enrollment.subscriber.email,
                enrollment.subscriber.timezone,
                enrollment.course.slug,
                _lesson_label(delivery.lesson, delivery.kind),
                state,
            )
        )
    owed = session.scalars(
        select(Enrollment)
        .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at.is_not(None))
        .order_by(Enrollment.next_due_at)
        .limit(limit)
        .options(
            selectinload(Enrollment.subscriber),
            selectinload(Enrollment.course).selectinload(Course.lessons),
        )
    ).all()
    histories = lesson_histories(session, [enrollment.id for enrollment in owed])
    for enrollment in owed:
        assert enrollment.next_due_at is not None
        lessons = enrollment.course.current_lessons
        history = [had.key for had in histories[enrollment.id]]
        settings, zone = enrollment.course.settings, ZoneInfo(enrollment.subscriber.timezone)
        is_for = audience_of(lessons).is_for(enrollment.fields, settings.fields)
        key = owed_lesson(
            [lesson.key for lesson in lessons],
            history,
            enrollment.next_due_at,
            zone,
            settings.rhythm,
            settings.cohort,
            is_for,
        )
        label = "(course complete)"
        if key is not None:
            label = _lesson_label(
                next(lesson for lesson in lessons if lesson.key == key),
                "lesson",
                number=[lesson.key for lesson in lessons].index(key) + 1,
            )
        entries.append(
            QueueEntry(
                enrollment.next_due_at,
                enrollment.subscriber.email,
                enrollment.subscriber.timezone,
                enrollment.course.slug,
                label,
                "owed",
            )
        )
    entries.sort(key=lambda entry: entry.due_at)
    return entries[:limit]


def next_up(session: Session) -> QueueEntry | None:
    """The next message that will go on its own, among the first few `upcoming`: a paused
    enrolment's waits for a resume, not for its time."""
    due = [entry for entry in upcoming(session, limit=5) if entry.state != "paused"]
    return due[0] if due else None


def status(session: Session, now: datetime) -> Status:
    def counts(column: InstrumentedAttribute[str]) -> dict[str, int]:
        query = select(column, func.count()).group_by(column)
        return dict(session.execute(query).all())

    next_owed = session.scalar(
        select(func.min(Enrollment.next_due_at)).where(Enrollment.status == EnrollmentStatus.ACTIVE)
    )
    next_pending = session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(Delivery.status == DeliveryStatus.PENDING)
    )
    candidates = [instant for instant in (next_owed, next_pending) if instant is not None]
    failed_last_day, recent = failures(session, now)
    return Status(
        subscribers=session.scalar(select(func.count()).select_from(Subscriber)) or 0,
        enrollments=counts(Enrollment.status),
        deliveries=counts(Delivery.status),
        suppressions=counts(Suppression.reason),
        failed_last_day=failed_last_day,
        recent_failures=recent,
        next_due=min(candidates) if candidates else None,
    )


def failures(session: Session, now: datetime) -> tuple[int, list[tuple[str, str, str]]]:
    """Messages given up on in the last day, and the last five given up on: (address, lesson or
    kind, the last error), newest first."""
    last_day = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.status == DeliveryStatus.FAILED,
            Delivery.last_attempt_at >= now - timedelta(days=1),
        )
    )
    recent = session.execute(
        select(Subscriber.email, Lesson.key, Delivery.kind, Delivery.last_error)
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
        .where(Delivery.status == DeliveryStatus.FAILED)
        .order_by(Delivery.last_attempt_at.desc())
        .limit(5)
    ).all()
    return last_day or 0, [(email, key or kind, error or "") for email, key, kind, error in recent]


def subscribers(
    session: Session,
    course_slug: str | None = None,
    status_filter: str | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    email: str | None = None,
) -> list[tuple[Subscriber, list[Enrollment]]]:
    """People by address, filtered; `NotFound` for a course that does not exist (a typo must not
    look like an empty course)."""
    if course_slug:
        get_course(session, course_slug)
    query = (
        select(Subscriber)
        .order_by(Subscriber.email)
        .limit(limit)
        .offset(offset)
        .options(selectinload(Subscriber.enrollments).selectinload(Enrollment.course))
    )
    if email is not None:
        query = query.where(Subscriber.email_key == mailbox_key(email.strip()))
    if course_slug or status_filter:
        query = query.join(Enrollment).join(Course)
        if course_slug:
            query = query.where(Course.slug == course_slug)
        if status_filter:
            query = query.where(Enrollment.status == status_filter)
    return [(s, list(s.enrollments)) for s in session.scalars(query).unique()]


@dataclass(frozen=True)
class SubscriberPage:
    rows: list[tuple[Subscriber, list[Enrollment]]]
    after: str | None
    """Where the next page starts (the last address of this one); None on the last page."""


def subscriber_page(
    session: Session,
    *,
    search: str = "",
    course_slug: str | None = None,
    status_filter: str | None = None,
    after: str = "",
    limit: int = 50,
) -> SubscriberPage:
    """People whose address or name starts with `search` (any case), by address, `limit` at a
    time from the address `after`: keyset paging on the unique mailbox key, so that a page deep
    into a million people costs what the first one costs.

    A search is two walks of an index in address order, each stopping after `limit + 1` people: by
    the mailbox key, and by the name's `search_key` (whose matches are then put in address order);
    a filter by course or status is asked of each person met (`EXISTS` on the enrolment), so the
    walk stops as soon as a page is full instead of listing every enrolment first."""
    if course_slug:
        get_course(session, course_slug)
    if status_filter:
        parse_enrollment_status(status_filter)  # a typo is an error, not an empty page
    conditions: list[ColumnElement[bool]] = []
    if after:
        conditions.append(Subscriber.email_key > after)
    if course_slug or status_filter:
        enrolled = select(Enrollment.id).where(Enrollment.subscriber_id == Subscriber.id)
        if course_slug:
            enrolled = enrolled.join(Course).where(Course.slug == course_slug)
        if status_filter:
            enrolled = enrolled.where(Enrollment.status == status_filter)
        conditions.append(enrolled.exists())

    def page_of(*where: ColumnElement[bool]) -> Select[int, str]:
        return (
            select(Subscriber.id, Subscriber.email_key)
            .where(*conditions, *where)
            .order_by(Subscriber.email_key)
            .limit(limit + 1)
        )

    search = search.strip()
    if search:
        by_address = page_of(*_prefix(session, Subscriber.email_key, mailbox_key(search)))
        by_name = _prefix(session, Subscriber.name_key, search_key(search))
        keys = {id_: key for id_, key in session.execute(by_address)}
        if by_name:
            keys.update({id_: key for id_, key in session.execute(page_of(*by_name))})
    else:
        keys = {id_: key for id_, key in session.execute(page_of())}
    ids = [id_ for id_, _ in sorted(keys.items(), key=lambda item: item[1])[: limit + 1]]
    people = {
        person.id: person
        for person in session.scalars(
            select(Subscriber)
            .where(Subscriber.id.in_(ids))
            .options(selectinload(Subscriber.enrollments).selectinload(Enrollment.course))
        )
    }
    found = [people[id_] for id_ in ids if id_ in people]
    rows = [(s, list(s.enrollments)) for s in found[:limit]]
    return SubscriberPage(rows, found[limit - 1].email_key if len(found) > limit else None)


def _prefix(
    session: Session, column: InstrumentedAttribute[str], prefix: str
) -> list[ColumnElement[bool]]:
    """`column` starts with `prefix`, said so that an index on it is used. SQLite uses no index
    for LIKE (its LIKE ignores ASCII case), but the keys are lower case already and compare as
    UTF-8 bytes, that is by code point: the keys that start with "abc" are exactly those from
    "abc" up to, not including, "abd". PostgreSQL uses its pattern index for LIKE 'abc%'."""
    if not prefix:
        return []
    if session.get_bind().dialect.name != "sqlite":
        return [column.startswith(prefix, autoescape=True)]
    last = ord(prefix[-1])
    if last == 0x10FFFF:  # the last code point: nothing comes after it, so no upper bound
        return [column >= prefix]
    following = 0xE000 if 0xD7FF <= last < 0xE000 else last + 1  # surrogates are not text
    return [column >= prefix, column < prefix[:-1] + chr(following)]


def subscriber_detail(session: Session, email: str) -> tuple[Subscriber, list[Delivery]]:
    return _with_history(session, find_subscriber(session, email))


def subscriber_detail_by_id(
    session: Session, subscriber_id: int
) -> tuple[Subscriber, list[Delivery]]:
    return _with_history(session, get_subscriber(session, subscriber_id))


def _with_history(session: Session, subscriber: Subscriber) -> tuple[Subscriber, list[Delivery]]:
    deliveries = session.scalars(
        select(Delivery)
        .join(Enrollment)
        .where(Enrollment.subscriber_id == subscriber.id)
        .order_by(Delivery.due_at, Delivery.id)
        .options(
            selectinload(Delivery.lesson),
            selectinload(Delivery.enrollment).selectinload(Enrollment.course),
        )
    ).all()
    return subscriber, list(deliveries)


def deliveries(
    session: Session,
    status_filter: str | None = None,
    course_slug: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Delivery]:
    """The ledger, newest first, with each row's person, course and lesson loaded."""
    query = (
        select(Delivery)
        .order_by(Delivery.id.desc())
        .limit(limit)
        .offset(offset)
        .options(
            selectinload(Delivery.lesson),
            selectinload(Delivery.enrollment).selectinload(Enrollment.course),
            selectinload(Delivery.enrollment).selectinload(Enrollment.subscriber),
        )
    )
    if status_filter:
        query = query.where(Delivery.status == status_filter)
    if course_slug:
        query = query.join(Enrollment).join(Course).where(Course.slug == course_slug)
    return list(session.scalars(query))


@dataclass(frozen=True)
class CourseSummary:
    course: Course
    lessons: list[Lesson]
    """The current lessons, in sending order: lesson n is `lessons[n - 1]`."""
    retired: list[Lesson]
    enrollments: dict[str, int]
    """How many enrolments are in each status."""

    @property
    def enrolled(self) -> int:
        """How many enrolments the course has, in any status."""
        return sum(self.enrollments.values())


def courses(session: Session) -> list[CourseSummary]:
    found = session.scalars(
        select(Course).order_by(Course.slug).options(selectinload(Course.lessons))
    ).all()
    # Counted as enrolments change (`store/tallies.py`), not over a million rows per visit.
    counts = tallies.enrollment_counts(session)
    return [_summary(course, counts.get(course.id, {})) for course in found]


def course_summary(session: Session, slug: str) -> CourseSummary:
    found = get_course(session, slug)
    return _summary(found, tallies.enrollment_counts(session).get(found.id, {}))


def _summary(course: Course, counts: dict[str, int]) -> CourseSummary:
    return CourseSummary(
        course=course,
        lessons=course.current_lessons,
        retired=[lesson for lesson in course.lessons if not lesson.is_current],
        enrollments=counts,
    )


def _lesson_label(lesson: Lesson | None, kind: str, number: int | None = None) -> str:
    if lesson is None:
        return kind
    label = f"{number or lesson.position} {lesson.key}"
    return label if kind == "lesson" else f"{label} ({kind})"
