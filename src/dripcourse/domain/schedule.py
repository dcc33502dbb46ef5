"""When each lesson is due, which lesson is owed next, and when to retry a failed delivery.

This module is the scheduling arithmetic and nothing else: it reads no clock, touches no database
and logs nothing, so every answer depends only on its arguments (`now` is always passed in).
Instants in and out are timezone-aware and come back in UTC; a naive datetime is refused, because
guessing its zone is exactly the bug this module exists to prevent.

Sends happen at the course's wall-clock `send_time` in the subscriber's own IANA zone. Days are
calendar days in that zone, never 24-hour blocks, so a lesson at 08:00 stays at 08:00 across DST.

`cadence_days` and `send_days` combine as: a lesson is owed `cadence_days` local days after the one
before was due, then waits for the next send day. So the cadence is the least spacing, and a wait
for a send day is never made up later: with cadence 3 on Mondays and Wednesdays, Monday + 3 is a
Thursday, which waits for Monday, and every lesson goes on a Monday (weekly). A course that wants
both days asks for cadence 2 (Mon -> Wed, Wed + 2 = Fri -> Mon). Catching up instead (counting
from the unmoved day) would send lessons closer together than the author's cadence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "DAY_ABBREVIATIONS",
    "PlannedLesson",
    "RetryPolicy",
    "Rhythm",
    "every_day",
    "first_lesson_due",
    "first_slot_at_or_after",
    "following_on_rhythm",
    "next_lesson",
    "next_lesson_due",
    "parse_send_days",
    "parse_send_time",
    "plan_from_start",
    "plan_lessons",
    "resumed_due",
    "retry_at",
    "should_give_up",
    "slot_on",
]


@dataclass(frozen=True, slots=True)
class Rhythm:
    """How often and when a course sends: every `cadence_days` local days, at `send_time`, on
    `send_days` (weekday numbers, Monday=0)."""

    cadence_days: int = 7
    send_time: time = time(8, 0)
    send_days: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if self.cadence_days < 1:
            raise ValueError(f"cadence_days must be at least 1, got {self.cadence_days}")
        # An aware send_time would be silently reinterpreted in the subscriber's zone.
        if self.send_time.tzinfo is not None:
            raise ValueError("send_time must be a local wall-clock time without a time zone")
        if not self.send_days:
            raise ValueError("send_days must name at least one weekday")
        bad = sorted(d for d in self.send_days if not 0 <= d <= 6)
        if bad:
            raise ValueError(f"send_days must be weekday numbers 0 (Monday) to 6, got {bad}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off for temporary delivery failures, capped, with a deadline."""

    first_delay: timedelta = timedelta(minutes=5)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=6)
    give_up_after: timedelta = timedelta(days=3)

    def __post_init__(self) -> None:
        if self.first_delay <= timedelta(0):
            raise ValueError(f"first_delay must be positive, got {self.first_delay}")
        # A factor below 1 would make later retries come sooner than earlier ones.
        if not 1.0 <= self.factor < float("inf"):
            raise ValueError(f"factor must be a finite number >= 1, got {self.factor}")
        if self.max_delay < self.first_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) must not be shorter than first_delay "
                f"({self.first_delay})"
            )
        if self.give_up_after <= timedelta(0):
            raise ValueError(f"give_up_after must be positive, got {self.give_up_after}")


def _aware(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got naive {instant!r}")
    return instant.astimezone(UTC)


def slot_on(day: date, zone: ZoneInfo, send_time: time) -> datetime:
    """The UTC instant of `send_time` on the local date `day` in `zone`.

    A wall time skipped by a spring-forward gap is moved forward by the length of the gap (02:30 on
    a 02:00->03:00 night is 03:30); one repeated by a fall-back is its first occurrence.
    """
    if send_time.tzinfo is not None:
        raise ValueError("send_time must be a local wall-clock time without a time zone")
    # fold=0 gives both rules at once (PEP 495): in a gap it applies the offset from before the
    # transition, which lands `gap` later on the clock; in an overlap it picks the earlier instant.
    local = datetime.combine(day, send_time.replace(fold=0), tzinfo=zone)
    return local.astimezone(UTC)


def first_slot_at_or_after(instant: datetime, zone: ZoneInfo, rhythm: Rhythm) -> datetime:
    """The earliest slot (`send_time` on an allowed local weekday) that is at or after `instant`."""
    instant = _aware(instant, "instant")
    # Start a day early: where a gap pushes a slot past midnight, the previous day's slot can fall
    # on the instant's local date.
    day = instant.astimezone(zone).date() - timedelta(days=1)
    while True:
        slot = slot_on(day, zone, rhythm.send_time)
        # The weekday that counts is the one the subscriber sees on the slot itself.
        if slot >= instant and slot.astimezone(zone).weekday() in rhythm.send_days:
            return slot
        day += timedelta(days=1)


def first_lesson_due(enrolled_at: datetime, zone: ZoneInfo, rhythm: Rhythm) -> datetime:
    """When lesson 1 is due: the first slot at or after enrolment."""
    return first_slot_at_or_after(_aware(enrolled_at, "enrolled_at"), zone, rhythm)


def next_lesson_due(previous_sent_at: datetime, zone: ZoneInfo, rhythm: Rhythm) -> datetime:
    """When the lesson after one sent at `previous_sent_at` is due.

    `cadence_days` local calendar days after the send, at `send_time` if that weekday is allowed,
    else on the next allowed weekday. Anchoring on the actual send (not on when it was due) keeps
    the spacing after a downtime, instead of catching up with a burst of lessons.
    """
    previous_sent_at = _aware(previous_sent_at, "previous_sent_at")
    target = previous_sent_at.astimezone(zone).date() + timedelta(days=rhythm.cadence_days)
    start_of_target = slot_on(target, zone, time(0, 0))
    return first_slot_at_or_after(start_of_target, zone, rhythm)


def following_lesson_due(
    previous_due_at: datetime, previous_sent_at: datetime, zone: ZoneInfo, rhythm: Rhythm
) -> datetime:
    """When lesson k+1 is due, given when lesson k was due and when it actually went out.

    In the rhythm, one cadence after lesson k was due, so a pass that runs a few hours late does not
    shift the person's weekday. But if lesson k went out so late (a downtime) that this would leave
    less than half a cadence after it, the spacing is kept from the actual send instead: no burst.
    """
    on_rhythm = next_lesson_due(previous_due_at, zone, rhythm)
    if on_rhythm - _aware(previous_sent_at, "previous_sent_at") >= (
        timedelta(days=rhythm.cadence_days) / 2
    ):
        return on_rhythm
    return next_lesson_due(previous_sent_at, zone, rhythm)


def same_local_day(
    due_at: datetime,
    old: ZoneInfo,
    new: ZoneInfo,
    rhythm: Rhythm,
    not_before: datetime | None = None,
) -> datetime:
    """A lesson due at `due_at` in zone `old`, moved to a person's new zone: the send time of the
    same local date in `new` (or the next allowed day), never before `not_before`."""
    start_of_day = slot_on(_aware(due_at, "due_at").astimezone(old).date(), new, time(0, 0))
    if not_before is not None:
        start_of_day = max(start_of_day, _aware(not_before, "not_before"))
    return first_slot_at_or_after(start_of_day, new, rhythm)


def resumed_due(
    due_at: datetime | None,
    paused_at: datetime,
    resumed_at: datetime,
    zone: ZoneInfo,
    rhythm: Rhythm,
) -> datetime:
    """When the next lesson is due after a pause from `paused_at` to `resumed_at`.

    A lesson that was already owed at the pause (or none scheduled) goes at the first slot after
    resuming; otherwise the wait that was left at the pause is kept, then snapped to a slot.
    """
    paused_at = _aware(paused_at, "paused_at")
    resumed_at = _aware(resumed_at, "resumed_at")
    if resumed_at < paused_at:
        raise ValueError(f"resumed_at ({resumed_at}) is before paused_at ({paused_at})")
    if due_at is None:
        return first_slot_at_or_after(resumed_at, zone, rhythm)
    due_at = _aware(due_at, "due_at")
    if due_at <= paused_at:
        return first_slot_at_or_after(resumed_at, zone, rhythm)
    # The shifted instant is generally not a slot (DST, pauses of partial days), hence the snap.
    return first_slot_at_or_after(due_at + (resumed_at - paused_at), zone, rhythm)


def next_lesson(lesson_keys: Sequence[str], history: Sequence[str]) -> str | None:
    """The key of the lesson owed next, or None when the enrolment has had every lesson.

    `lesson_keys` are the course's current lessons in order; `history` the keys this enrolment has
    had (sent or given up on) in the order they went out, retired ones included. A lesson added
    while the course runs reaches everyone who has not passed its place: the place is that of the
    last lesson in `history` still in the course, and the answer is the first lesson after it that
    they have not had.
    """
    position = {key: index for index, key in enumerate(lesson_keys)}
    if len(position) != len(lesson_keys):
        raise ValueError("lesson_keys must not contain duplicates")
    had = set(history)
    start = 0
    for key in reversed(history):
        if key in position:
            start = position[key] + 1
            break
    for key in lesson_keys[start:]:
        if key not in had:
            return key
    return None


def remaining_lessons(lesson_keys: Sequence[str], history: Sequence[str]) -> list[tuple[int, str]]:
    """The lessons still owed after `history`, numbered as in the course, in the order they will go
    out: `next_lesson` asked again after each."""
    numbers = {key: number for number, key in enumerate(lesson_keys, 1)}
    remaining: list[tuple[int, str]] = []
    had = list(history)
    while (key := next_lesson(lesson_keys, had)) is not None:
        remaining.append((numbers[key], key))
        had.append(key)
    return remaining


def retry_at(attempts: int, failed_at: datetime, policy: RetryPolicy) -> datetime:
    """When to try again after the `attempts`-th failed attempt (1 for the first failure)."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    failed_at = _aware(failed_at, "failed_at")
    try:
        delay = min(policy.first_delay * policy.factor ** (attempts - 1), policy.max_delay)
    except OverflowError:
        # Far past the cap: the exact delay does not fit in a float or timedelta, nor matter.
        delay = policy.max_delay
    return failed_at + delay


def should_give_up(first_attempt_at: datetime, now: datetime, policy: RetryPolicy) -> bool:
    """True once `give_up_after` has passed since the first attempt."""
    first_attempt_at = _aware(first_attempt_at, "first_attempt_at")
    now = _aware(now, "now")
    return now - first_attempt_at >= policy.give_up_after


_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS: dict[str, int] = {
    **{name: number for number, name in enumerate(_DAY_NAMES)},
    **{name[:3]: number for number, name in enumerate(_DAY_NAMES)},
}


def parse_send_days(names: Sequence[str]) -> frozenset[int]:
    """Weekday numbers (Monday=0) from names like "mon" or "Monday" (case-insensitive)."""
    # A bare string is a Sequence[str] too; iterating it would complain about "m", not the mistake.
    if isinstance(names, str):
        raise ValueError(f"send_days must be a list of day names, not the string {names!r}")
    days: set[int] = set()
    for name in names:
        number = _DAY_NUMBERS.get(name.strip().lower())
        if number is None:
            raise ValueError(
                f"unknown day {name!r} in send_days: use mon, tue, wed, thu, fri, sat, sun"
            )
        days.add(number)
    if not days:
        raise ValueError("send_days must name at least one day")
    return frozenset(days)


# [0-9], not \d: \d also matches non-ASCII digits, which are no way to write a send time.
_SEND_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def parse_send_time(text: str) -> time:
    """A 24-hour "HH:MM" wall-clock time, e.g. "08:00" or "17:30"."""
    match = _SEND_TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"send_time must look like HH:MM (24-hour, e.g. 08:00), got {text!r}")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ValueError(f"send_time {text!r} is not a time of day: hours 00-23, minutes 00-59")
    return time(hour, minute)


DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# -- a plan of the lessons ahead (timelines and calendars) ----------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedLesson:
    number: int
    """The lesson's place in the course (1-based)."""
    key: str
    due_at: datetime
    """When the dispatcher will send it, in UTC."""
    moved_from: date | None = None
    """The local date the rhythm landed on when that was not a send day (the lesson moved to the
    next send day); None when the lesson is on its rhythm's day."""
    cohort_due: datetime | None = None
    """In a cohort course, when the cohort has this lesson (`domain/cohort.py`); None otherwise."""
    skipped: str | None = None
    """Why this lesson is not owed (`due_at` is then the cohort's date); None when it is."""

    def moved_note(self, zone: ZoneInfo) -> str | None:
        """`moved from Sat to Mon: outside the send days`, or None."""
        if self.moved_from is None:
            return None
        was = DAY_ABBREVIATIONS[self.moved_from.weekday()]
        now = DAY_ABBREVIATIONS[self.due_at.astimezone(zone).weekday()]
        return f"moved from {was} to {now}: outside the send days"


def plan_lessons(
    lessons: Sequence[tuple[int, str]],
    first_due: datetime,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    first_sent_at: datetime | None = None,
    first_on_rhythm: datetime | None = None,
) -> list[PlannedLesson]:
    """When each of `lessons` ((number, key) in sending order) is due, the first at `first_due`.

    Each following lesson is due where `outcomes.record_outcomes` puts it once the one before went
    out: sent on time, except the first, which goes out at `first_sent_at` when given (a lesson
    already overdue goes at the next pass, and the one after it may keep its spacing from then).
    `first_on_rhythm` is the slot the first would have had if every weekday were a send day; it
    tells whether the first lesson was moved off a day outside the send days.
    """
    planned: list[PlannedLesson] = []
    due, on_rhythm = first_due, first_on_rhythm or first_due
    for index, (number, key) in enumerate(lessons):
        planned.append(PlannedLesson(number, key, due, _moved_from(on_rhythm, due, zone, rhythm)))
        sent = first_sent_at if index == 0 and first_sent_at is not None else due
        due, on_rhythm = following_on_rhythm(due, sent, zone, rhythm)
    return planned


def plan_from_start(
    lessons: Sequence[tuple[int, str]], start: datetime, zone: ZoneInfo, rhythm: Rhythm
) -> list[PlannedLesson]:
    """The lessons of someone who starts (is confirmed) at `start`: lesson 1 at the first slot."""
    return plan_lessons(
        lessons,
        first_lesson_due(start, zone, rhythm),
        zone,
        rhythm,
        first_on_rhythm=first_lesson_due(start, zone, every_day(rhythm)),
    )


def every_day(rhythm: Rhythm) -> Rhythm:
    """The same rhythm with every weekday a send day: where a lesson would land unmoved."""
    return replace(rhythm, send_days=frozenset(range(7)))


def following_on_rhythm(
    due: datetime, sent: datetime, zone: ZoneInfo, rhythm: Rhythm
) -> tuple[datetime, datetime]:
    """The next lesson's due time, and the slot it would have if every day were a send day."""
    following = following_lesson_due(due, sent, zone, rhythm)
    # The anchor the rule chose: when this lesson was due, or (after a downtime) when it went out.
    anchor = due if following == next_lesson_due(due, zone, rhythm) else sent
    return following, next_lesson_due(anchor, zone, every_day(rhythm))


def _moved_from(on_rhythm: datetime, due: datetime, zone: ZoneInfo, rhythm: Rhythm) -> date | None:
    day = on_rhythm.astimezone(zone).date()
    if due != on_rhythm and day.weekday() not in rhythm.send_days:
        return day
    return None
