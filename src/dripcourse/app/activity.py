"""The dashboard's overview in figures: who is active per course, what went out lately, what is
due soon, what failed, and the messages sent per day and due per day.

Days are UTC days: the operator's course runs in many zones at once, and a day of the chart must
mean the same hours for every row of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dripcourse.app.overview import courses, failures
from dripcourse.store import tallies
from dripcourse.store.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus

SENT_DAYS = 30
DUE_DAYS = 14


@dataclass(frozen=True, slots=True)
class CourseActivity:
    slug: str
    title: str
    active: int


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True, slots=True)
class Activity:
    courses: list[CourseActivity]
    sent_last_week: int
    due_next_day: int
    failed_last_day: int
    recent_failures: list[tuple[str, str, str]]
    """(address, lesson or kind, the last error), newest first."""
    sent_per_day: list[DayCount]
    """The last `SENT_DAYS` UTC days, today last, days without a message included."""
    due_per_day: list[DayCount]
    """Today and the next `DUE_DAYS - 1` UTC days: lessons owed and messages waiting to be sent
    (overdue ones count for today)."""


def activity(session: Session, now: datetime) -> Activity:
    today = now.date()
    first_sent_day = today - timedelta(days=SENT_DAYS - 1)
    # Counted as outcomes are recorded (`store/tallies.py`): a month holds a million messages.
    sent = tallies.sent_per_day(session, first_sent_day)
    horizon = _midnight(today + timedelta(days=DUE_DAYS), now)
    owed = tallies.owed_per_day(session, horizon.date())
    waiting = _per_day(
        session,
        Delivery.next_attempt_at,
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at < horizon,
    )
    due: dict[date, int] = {}
    for day, count in [*owed.items(), *waiting.items()]:
        due[max(day, today)] = due.get(max(day, today), 0) + count
    failed_last_day, recent_failures = failures(session, now)
    return Activity(
        courses=[
            CourseActivity(s.course.slug, s.course.title, s.enrollments.get("active", 0))
            for s in courses(session)
        ],
        sent_last_week=sum(n for day, n in sent.items() if day > today - timedelta(days=7)),
        due_next_day=_due_before(session, now + timedelta(days=1)),
        failed_last_day=failed_last_day,
        recent_failures=recent_failures,
        sent_per_day=_days(first_sent_day, SENT_DAYS, sent),
        due_per_day=_days(today, DUE_DAYS, due),
    )


def _per_day(session: Session, column: Any, *where: Any) -> dict[date, int]:
    day = func.date(column)
    rows = session.execute(select(day, func.count()).where(*where).group_by(day)).all()
    # SQLite answers with text, PostgreSQL with a date.
    return {date.fromisoformat(str(value)[:10]): count for value, count in rows}


def _due_before(session: Session, instant: datetime) -> int:
    owed = select(func.count()).where(
        Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at < instant
    )
    waiting = select(func.count()).where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at < instant
    )
    return (session.scalar(owed) or 0) + (session.scalar(waiting) or 0)


def _days(first: date, count: int, values: dict[date, int]) -> list[DayCount]:
    days = (first + timedelta(days=offset) for offset in range(count))
    return [DayCount(day, values.get(day, 0)) for day in days]


def _midnight(day: date, like: datetime) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=like.tzinfo)
