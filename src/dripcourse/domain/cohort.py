"""Cohort courses (`[schedule] starts_on`): everyone on the same dates, and how a late joiner gets there.

Pure arithmetic on top of `schedule.py`, with its conventions: no clock, no I/O, aware instants in
and UTC out, days are local calendar days in the person's zone.

The cohort's dates. Lesson 1 is due on `starts_on` at the course's send time in the person's own
zone (the first send day after, if `starts_on` is not one); each next lesson follows the one before
by the course's rhythm (`cadence_days` local days, then the next send day). So lesson k is due at
the cohort slot c(k): the same local date in every zone, the same wall-clock time across DST.

One rule places every lesson after the first (`lesson_due`): lesson k is due at the latest of
  - c(k), the cohort's date for it: nobody is ahead of the cohort;
  - the first slot at or after `not_before` (when the person starts, resumes, or the pass runs);
  - the first slot on a later local day than the lesson before went out: never two in one day.
Someone on the cohort's dates stays on them (c(k+1) is at least a day after c(k)); a late joiner who
catches up gets one lesson per send day until c(k) is the latest again; after a pause or a downtime
the same rule brings them back without a burst.

Late joiners (their first slot comes after c(1)) are placed by `LateJoiners`: `catch_up` starts at
lesson 1; `join_in_progress` starts at the cohort's current lesson at their first slot (the last
lesson whose cohort slot is at or before it) and is not owed the lessons before it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dripcourse.domain.audiences import next_lesson_for
from dripcourse.domain.schedule import (
    DAY_ABBREVIATIONS,
    PlannedLesson,
    Rhythm,
    first_slot_at_or_after,
    next_lesson,
    next_lesson_due,
    slot_on,
)

__all__ = [
    "BEFORE_JOINING",
    "Cohort",
    "LateJoiners",
    "cohort_note",
    "cohort_slot",
    "current_lesson",
    "due_after_history",
    "joining_lesson",
    "lesson_due",
    "owed_at",
    "owed_lesson",
    "parse_late_joiners",
    "plan_cohort",
    "plan_from_joining",
    "skipped_before",
    "starting_due",
]

EARLIEST_START, LATEST_START = date(1970, 1, 1), date(2999, 12, 31)
"""The range of `starts_on`: any real course's, far from where date arithmetic overflows."""

BEFORE_JOINING = "before you joined"
"""Why a lesson is not owed to someone who joined a cohort in progress."""


class LateJoiners(enum.StrEnum):
    CATCH_UP = "catch_up"
    """From lesson 1, one lesson per send day until they reach the cohort's dates."""
    JOIN_IN_PROGRESS = "join_in_progress"
    """From the cohort's current lesson; the lessons before it are not owed to them."""


def parse_late_joiners(text: str) -> LateJoiners:
    """`catch_up` or `join_in_progress`; ValueError naming both for anything else."""
    try:
        return LateJoiners(text)
    except ValueError:
        known = ", ".join(f'"{mode.value}"' for mode in LateJoiners)
        raise ValueError(f"must be one of {known}, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class Cohort:
    """A course everyone starts together: lesson 1 on `starts_on` (a local date)."""

    starts_on: date
    late_joiners: LateJoiners = LateJoiners.CATCH_UP

    def __post_init__(self) -> None:
        # A datetime is a date too (TOML's 2027-01-11T08:00 reads as one): its time would be lost.
        if isinstance(self.starts_on, datetime) or not isinstance(self.starts_on, date):
            raise ValueError(f"starts_on must be a date (2027-01-11), got {self.starts_on!r}")
        # Python's dates end at year 9999: a course's years of lessons must fit after its start.
        if not EARLIEST_START <= self.starts_on <= LATEST_START:
            raise ValueError(
                f"starts_on must be between {EARLIEST_START} and {LATEST_START}, "
                f"got {self.starts_on}"
            )


def cohort_slot(cohort: Cohort, number: int, zone: ZoneInfo, rhythm: Rhythm) -> datetime:
    """c(number): when the cohort has lesson `number` (1-based), in `zone`."""
    if number < 1:
        raise ValueError(f"lesson numbers start at 1, got {number}")
    return _cohort_slots(cohort.starts_on, zone, rhythm, number)[-1]


@lru_cache(maxsize=1024)
def _cohort_slots(
    starts_on: date, zone: ZoneInfo, rhythm: Rhythm, count: int
) -> tuple[datetime, ...]:
    # Cached: recording a group of outcomes asks the same few slots of the same course many times.
    slots = [first_slot_at_or_after(slot_on(starts_on, zone, time(0, 0)), zone, rhythm)]
    while len(slots) < count:
        slots.append(next_lesson_due(slots[-1], zone, rhythm))
    return tuple(slots)


def current_lesson(
    cohort: Cohort, at: datetime, lesson_count: int, zone: ZoneInfo, rhythm: Rhythm
) -> int:
    """The cohort's current lesson at `at`: the last (at most `lesson_count`) whose cohort slot is
    at or before `at`; 1 if none is yet."""
    number = 1
    while number < lesson_count and cohort_slot(cohort, number + 1, zone, rhythm) <= at:
        number += 1
    return number


def starting_due(start: datetime, cohort: Cohort, zone: ZoneInfo, rhythm: Rhythm) -> datetime:
    """When someone who starts at `start` with no lesson had yet gets their first one: their first
    slot, never before the cohort's first date. (In both modes: the lesson is 1 for `catch_up`,
    `current_lesson` at this instant for `join_in_progress`, whose cohort slot is at or before it.)"""
    return max(first_slot_at_or_after(start, zone, rhythm), cohort_slot(cohort, 1, zone, rhythm))


def lesson_due(
    number: int,
    cohort: Cohort,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    not_before: datetime,
    last_sent: datetime | None = None,
) -> datetime:
    """When lesson `number` is due (the rule of the module docstring): at its cohort slot, never
    before the first slot at or after `not_before`, never on the local day `last_sent` (the lesson
    before went out) or earlier."""
    due = max(
        cohort_slot(cohort, number, zone, rhythm), first_slot_at_or_after(not_before, zone, rhythm)
    )
    if last_sent is not None:
        next_day = last_sent.astimezone(zone).date() + timedelta(days=1)
        due = max(due, first_slot_at_or_after(slot_on(next_day, zone, time(0, 0)), zone, rhythm))
    return due


def due_after_history(
    lesson_keys: Sequence[str],
    history: Sequence[str],
    last_sent: datetime | None,
    cohort: Cohort,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    not_before: datetime,
) -> datetime:
    """When the next lesson is due for someone (re)starting or resuming at `not_before`, who has
    had `history` (keys, in the order they went out; the last at `last_sent`) of the course's
    current `lesson_keys`: `starting_due` with none had, else `lesson_due` of the one owed next."""
    if not history:
        return starting_due(not_before, cohort, zone, rhythm)
    key = next_lesson(lesson_keys, history)
    number = lesson_keys.index(key) + 1 if key is not None else max(len(lesson_keys), 1)
    return lesson_due(number, cohort, zone, rhythm, not_before=not_before, last_sent=last_sent)


def joining_lesson(
    lesson_keys: Sequence[str], due_at: datetime, cohort: Cohort, zone: ZoneInfo, rhythm: Rhythm
) -> str | None:
    """The lesson owed first to someone with no history whose first lesson is due at `due_at`:
    the first (`catch_up`), or the cohort's current one at `due_at` (`join_in_progress`)."""
    if not lesson_keys:
        return None
    if cohort.late_joiners is LateJoiners.CATCH_UP:
        return lesson_keys[0]
    return lesson_keys[current_lesson(cohort, due_at, len(lesson_keys), zone, rhythm) - 1]


def owed_lesson(
    lesson_keys: Sequence[str],
    history: Sequence[str],
    due_at: datetime,
    zone: ZoneInfo,
    rhythm: Rhythm,
    cohort: Cohort | None,
    is_for: Callable[[str], bool] = lambda key: True,
) -> str | None:
    """The lesson owed to an enrolment whose next lesson is due at `due_at`: `schedule.next_lesson`,
    except that in a cohort course someone who has had none starts at `joining_lesson`; and
    passing over the lessons that are not for them (`audiences.next_lesson_for`)."""
    if cohort is not None and not history:
        first = joining_lesson(lesson_keys, due_at, cohort, zone, rhythm)
        if first is None:
            return None
        # The lessons before it are not owed: the cohort had them before this person joined.
        history = lesson_keys[: lesson_keys.index(first)]
    return next_lesson_for(lesson_keys, history, is_for)[0]


def owed_at(
    number: int, due_at: datetime, zone: ZoneInfo, rhythm: Rhythm, cohort: Cohort | None
) -> datetime:
    """When lesson `number`, owed from `due_at`, goes: then, but in a cohort course never before
    the cohort's date for it. (A lesson passed over for an audience leaves its week empty there,
    where elsewhere the next lesson takes its day: nobody is ever ahead of their cohort.)"""
    if cohort is None:
        return due_at
    return max(due_at, cohort_slot(cohort, number, zone, rhythm))


def plan_cohort(
    lessons: Sequence[tuple[int, str]],
    first_due: datetime,
    cohort: Cohort,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    first_sent_at: datetime | None = None,
) -> list[PlannedLesson]:
    """When each of `lessons` ((number, key) in sending order) is due, the first at `first_due`,
    each next one where `outcomes.record_outcomes` puts it once the one before went out on time
    (the first at `first_sent_at` when given). Each planned lesson carries its cohort date."""
    planned: list[PlannedLesson] = []
    due, sent = first_due, first_sent_at or first_due
    for index, (number, key) in enumerate(lessons):
        if index:
            due = lesson_due(number, cohort, zone, rhythm, not_before=sent, last_sent=sent)
            sent = due
        planned.append(
            PlannedLesson(number, key, due, cohort_due=cohort_slot(cohort, number, zone, rhythm))
        )
    return planned


def skipped_before(
    lessons: Sequence[tuple[int, str]], cohort: Cohort, zone: ZoneInfo, rhythm: Rhythm
) -> list[PlannedLesson]:
    """`lessons` as not owed (joined in progress after them), each at the cohort's date for it."""
    return [
        PlannedLesson(
            number,
            key,
            slot := cohort_slot(cohort, number, zone, rhythm),
            cohort_due=slot,
            skipped=BEFORE_JOINING,
        )
        for number, key in lessons
    ]


def plan_from_joining(
    lessons: Sequence[tuple[int, str]],
    start: datetime,
    cohort: Cohort,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    lesson_count: int | None = None,
) -> list[PlannedLesson]:
    """Every lesson of `lessons` ((number, key) in order: the course's, or those of them for one
    person's audience) for someone who starts at `start` with none had: those they are not owed
    (joined in progress) first, marked skipped. `lesson_count` is the course's number of lessons
    (default: the last number of `lessons`)."""
    if not lessons:
        return []
    due = starting_due(start, cohort, zone, rhythm)
    first = 1
    if cohort.late_joiners is LateJoiners.JOIN_IN_PROGRESS:
        count = lessons[-1][0] if lesson_count is None else lesson_count
        first = current_lesson(cohort, due, count, zone, rhythm)
    owed = [x for x in lessons if x[0] >= first]
    if owed:  # the first of them may be later than lesson `first` (an audience): on its date
        due = owed_at(owed[0][0], due, zone, rhythm, cohort)
    return [
        *skipped_before([x for x in lessons if x[0] < first], cohort, zone, rhythm),
        *plan_cohort(owed, due, cohort, zone, rhythm),
    ]


def cohort_note(lesson: PlannedLesson, zone: ZoneInfo) -> str | None:
    """How a planned lesson stands to the cohort: skipped, catching up, or None on its date."""
    if lesson.cohort_due is None:
        return None
    local = lesson.cohort_due.astimezone(zone)
    when = f"{DAY_ABBREVIATIONS[local.weekday()]} {local:%d %b}"
    if lesson.skipped is not None:
        return f"skipped: {lesson.skipped} (the cohort had it {when})"
    if lesson.due_at > lesson.cohort_due:
        return f"behind the cohort, which had it {when}"
    return None
