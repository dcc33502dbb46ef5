"""Tests of `dripcourse.domain.cohort`: a cohort's dates, and how early, late and returning people
are placed on them, across zones and DST changes.

Examples pin down the story of the issue (a cohort starting 1 March 2027 in Toronto and London,
whose lessons cross 14 and 28 March); the properties check the rules over many zones, rhythms and
joining instants, weighted towards the weeks around each zone's DST changes.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripcourse.courses.files import read_course
from dripcourse.domain.cohort import (
    BEFORE_JOINING,
    Cohort,
    LateJoiners,
    cohort_note,
    cohort_slot,
    current_lesson,
    due_after_history,
    joining_lesson,
    lesson_due,
    owed_at,
    owed_lesson,
    parse_late_joiners,
    plan_from_joining,
    starting_due,
)
from dripcourse.domain.schedule import Rhythm, first_slot_at_or_after

EXAMPLE = Path(__file__).resolve().parents[2] / "emails" / "runners"
TORONTO = ZoneInfo("America/Toronto")
LONDON = ZoneInfo("Europe/London")
WEEKLY = Rhythm()
MARCH = Cohort(date(2027, 3, 1))  # a Monday; Toronto springs forward on 14 March, London on 28
LESSONS = [(n, f"l{n}") for n in range(1, 9)]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(instant: datetime, zone: ZoneInfo) -> tuple[date, time]:
    moved = instant.astimezone(zone)
    return moved.date(), moved.time()


# --- the cohort's dates --------------------------------------------------------------------------


@pytest.mark.parametrize("zone", [TORONTO, LONDON])
def test_the_cohort_has_each_lesson_at_eight_local_on_the_same_dates_across_dst(
    zone: ZoneInfo,
) -> None:
    slots = [cohort_slot(MARCH, n, zone, WEEKLY) for n in range(1, 6)]

    assert [local(s, zone) for s in slots] == [
        (date(2027, 3, d), time(8, 0)) for d in (1, 8, 15, 22, 29)
    ]


def test_utc_moves_with_dst_while_the_local_time_stays() -> None:
    toronto = [cohort_slot(MARCH, n, TORONTO, WEEKLY).hour for n in (2, 3)]
    london = [cohort_slot(MARCH, n, LONDON, WEEKLY).hour for n in (4, 5)]

    assert toronto == [13, 12]  # EST then EDT (14 March)
    assert london == [8, 7]  # GMT then BST (28 March)


def test_a_start_that_is_not_a_send_day_waits_for_the_first_send_day() -> None:
    weekdays = Rhythm(cadence_days=1, send_days=frozenset({0, 2, 4}))  # Mon, Wed, Fri
    saturday = Cohort(date(2027, 3, 6))

    slots = [cohort_slot(saturday, n, LONDON, weekdays) for n in (1, 2, 3)]

    assert [local(s, LONDON)[0] for s in slots] == [
        date(2027, 3, 8),
        date(2027, 3, 10),
        date(2027, 3, 12),
    ]


def test_a_datetime_is_no_cohort_start() -> None:
    with pytest.raises(ValueError, match="must be a date"):
        Cohort(datetime(2027, 3, 1, 8, 0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="catch_up"):
        parse_late_joiners("catchup")
    assert parse_late_joiners("join_in_progress") is LateJoiners.JOIN_IN_PROGRESS


# --- who gets what when --------------------------------------------------------------------------


def test_an_early_sign_up_gets_every_lesson_on_the_cohorts_date() -> None:
    plan = plan_from_joining(LESSONS[:5], utc(2027, 2, 10, 15), MARCH, TORONTO, WEEKLY)

    assert [p.due_at for p in plan] == [cohort_slot(MARCH, n, TORONTO, WEEKLY) for n in range(1, 6)]
    assert all(cohort_note(p, TORONTO) is None for p in plan)


def test_a_late_joiner_catching_up_gets_one_lesson_a_day_then_the_cohorts_dates() -> None:
    # Confirmed Wednesday 17 March, 11:00 in Toronto: the cohort had lessons 1-3 already.
    plan = plan_from_joining(LESSONS[:6], utc(2027, 3, 17, 15), MARCH, TORONTO, WEEKLY)

    assert [(p.number, local(p.due_at, TORONTO)[0]) for p in plan] == [
        (1, date(2027, 3, 18)),
        (2, date(2027, 3, 19)),
        (3, date(2027, 3, 20)),
        (4, date(2027, 3, 22)),  # the cohort's date: caught up
        (5, date(2027, 3, 29)),
        (6, date(2027, 4, 5)),
    ]
    assert {local(p.due_at, TORONTO)[1] for p in plan} == {time(8, 0)}
    assert cohort_note(plan[0], TORONTO) == "behind the cohort, which had it Mon 01 Mar"
    assert cohort_note(plan[3], TORONTO) is None


def test_a_late_joiner_in_progress_starts_at_the_current_lesson() -> None:
    cohort = Cohort(MARCH.starts_on, LateJoiners.JOIN_IN_PROGRESS)

    plan = plan_from_joining(LESSONS[:6], utc(2027, 3, 17, 15), cohort, LONDON, WEEKLY)

    assert [p.skipped for p in plan] == [BEFORE_JOINING] * 2 + [None] * 4
    assert [(p.number, local(p.due_at, LONDON)[0]) for p in plan[2:]] == [
        (3, date(2027, 3, 18)),  # the current lesson (the cohort had it on the 15th), at once
        (4, date(2027, 3, 22)),
        (5, date(2027, 3, 29)),  # BST from the 28th: still 08:00
        (6, date(2027, 4, 5)),
    ]
    assert (
        cohort_note(plan[0], LONDON) == "skipped: before you joined (the cohort had it Mon 01 Mar)"
    )
    assert joining_lesson([k for _, k in LESSONS], plan[2].due_at, cohort, LONDON, WEEKLY) == "l3"


def test_after_the_cohorts_last_date() -> None:
    late = utc(2027, 6, 1, 12)
    catch_up = plan_from_joining(LESSONS[:3], late, MARCH, LONDON, WEEKLY)
    in_progress = plan_from_joining(
        LESSONS[:3], late, Cohort(MARCH.starts_on, LateJoiners.JOIN_IN_PROGRESS), LONDON, WEEKLY
    )

    assert [local(p.due_at, LONDON)[0] for p in catch_up] == [
        date(2027, 6, 2),
        date(2027, 6, 3),
        date(2027, 6, 4),
    ]
    assert [p.skipped for p in in_progress] == [BEFORE_JOINING, BEFORE_JOINING, None]
    assert local(in_progress[2].due_at, LONDON)[0] == date(2027, 6, 2)


def test_coming_back_after_a_pause_never_precedes_the_cohort_nor_bursts() -> None:
    keys = [k for _, k in LESSONS]
    # Had lessons 1 and 2 (the 1st and 8th); paused, back on Tuesday 9 March: lesson 3 waits
    # for the cohort's 15 March.
    sent = cohort_slot(MARCH, 2, TORONTO, WEEKLY)
    back = due_after_history(
        keys, ["l1", "l2"], sent, MARCH, TORONTO, WEEKLY, not_before=utc(2027, 3, 9, 18)
    )
    assert back == cohort_slot(MARCH, 3, TORONTO, WEEKLY)
    # Back on 30 March, far behind: the next day, and the one after that the day after.
    back = due_after_history(
        keys, ["l1", "l2"], sent, MARCH, TORONTO, WEEKLY, not_before=utc(2027, 3, 30, 18)
    )
    assert local(back, TORONTO) == (date(2027, 3, 31), time(8, 0))
    after = lesson_due(4, MARCH, TORONTO, WEEKLY, not_before=back, last_sent=back)
    assert local(after, TORONTO) == (date(2027, 4, 1), time(8, 0))


# --- properties ----------------------------------------------------------------------------------

ZONES = [
    ZoneInfo(key)
    for key in (
        "UTC",
        "America/Toronto",
        "America/St_Johns",
        "America/Santiago",
        "America/Havana",  # DST at midnight
        "Europe/London",
        "Europe/Dublin",
        "Australia/Lord_Howe",  # 30-minute DST
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "Pacific/Kiritimati",
    )
]
PROPERTY = settings(max_examples=150, deadline=None)


@cache
def transition_days(zone: ZoneInfo) -> tuple[date, ...]:
    days, day = [], date(2026, 1, 1)
    previous = datetime.combine(day, time(12), tzinfo=UTC).astimezone(zone).utcoffset()
    while day < date(2029, 1, 1):
        day += timedelta(days=1)
        offset = datetime.combine(day, time(12), tzinfo=UTC).astimezone(zone).utcoffset()
        if offset != previous:
            days.append(day)
        previous = offset
    return tuple(days)


@st.composite
def cases(draw: st.DrawFn) -> tuple[ZoneInfo, Cohort, Rhythm, datetime]:
    """A zone, a cohort starting within a few weeks of one of its DST changes, a rhythm, and an
    instant someone is confirmed at: before the start, or up to months after it."""
    zone = draw(st.sampled_from(ZONES))
    around = draw(st.sampled_from(transition_days(zone) or (date(2027, 3, 14),)))
    starts_on = around + timedelta(days=draw(st.integers(-40, 10)))
    mode = draw(st.sampled_from(list(LateJoiners)))
    rhythm = Rhythm(
        cadence_days=draw(st.integers(1, 10)),
        send_time=draw(
            st.one_of(
                st.builds(time, st.integers(0, 23), st.sampled_from([0, 30])),
                st.builds(time, st.integers(0, 3), st.sampled_from([0, 15, 30, 45])),
            )
        ),
        send_days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
    )
    offset = draw(st.timedeltas(min_value=timedelta(days=-20), max_value=timedelta(days=90)))
    joined = datetime.combine(starts_on, time(12), tzinfo=UTC) + offset
    return zone, Cohort(starts_on, mode), rhythm, joined


@PROPERTY
@given(cases())
def test_cohort_dates_are_send_slots_spaced_by_the_rhythm(
    case: tuple[ZoneInfo, Cohort, Rhythm, datetime],
) -> None:
    zone, cohort, rhythm, _ = case
    slots = [cohort_slot(cohort, n, zone, rhythm) for n in range(1, 7)]
    first_day = slots[0].astimezone(zone).date()

    assert cohort.starts_on - timedelta(days=1) <= first_day < cohort.starts_on + timedelta(days=8)
    for slot in slots:
        assert slot.astimezone(zone).weekday() in rhythm.send_days
        assert first_slot_at_or_after(slot, zone, rhythm) == slot
    for before, after in pairwise(slots):
        gap = after.astimezone(zone).date() - before.astimezone(zone).date()
        assert gap >= timedelta(days=rhythm.cadence_days)


@PROPERTY
@given(cases())
def test_nobody_is_ahead_of_the_cohort_and_nobody_gets_two_in_a_day(
    case: tuple[ZoneInfo, Cohort, Rhythm, datetime],
) -> None:
    zone, cohort, rhythm, joined = case
    plan = plan_from_joining(LESSONS[:6], joined, cohort, zone, rhythm)
    owed = [p for p in plan if p.skipped is None]

    assert [p.number for p in plan] == list(range(1, 7))
    assert owed, "someone who joins is owed at least the last lesson"
    assert owed[0].due_at >= first_slot_at_or_after(joined, zone, rhythm)
    for lesson in owed:
        assert lesson.cohort_due is not None and lesson.due_at >= lesson.cohort_due
        assert first_slot_at_or_after(lesson.due_at, zone, rhythm) == lesson.due_at
    for before, after in pairwise(owed):
        assert after.due_at.astimezone(zone).date() > before.due_at.astimezone(zone).date()
        # Once on the cohort's dates, they stay on them.
        if before.due_at == before.cohort_due:
            assert after.due_at == after.cohort_due
    if cohort.late_joiners is LateJoiners.CATCH_UP:
        assert not any(p.skipped for p in plan)
    else:
        # Skipped lessons come first, and are exactly those the cohort had before their start.
        start = owed[0]
        assert all(p.skipped == BEFORE_JOINING for p in plan[: start.number - 1])
        assert start.number == current_lesson(cohort, start.due_at, 6, zone, rhythm)


@PROPERTY
@given(cases())
def test_an_early_sign_up_is_on_the_cohort_from_lesson_one(
    case: tuple[ZoneInfo, Cohort, Rhythm, datetime],
) -> None:
    zone, cohort, rhythm, joined = case
    if joined > cohort_slot(cohort, 1, zone, rhythm):
        joined = cohort_slot(cohort, 1, zone, rhythm) - timedelta(hours=1)

    plan = plan_from_joining(LESSONS[:5], joined, cohort, zone, rhythm)

    assert starting_due(joined, cohort, zone, rhythm) == cohort_slot(cohort, 1, zone, rhythm)
    assert [p.due_at for p in plan] == [p.cohort_due for p in plan]


# --- course.toml: whatever is written, a problem at its line or a cohort ---------------------------

TOML_VALUES = st.sampled_from(
    [
        "2027-03-01",
        '"2027-03-01"',
        "2027-03-01T08:00:00",
        "2027-03-01T08:00:00Z",
        "2027-03-01 08:00:00+01:00",
        "08:00:00",
        "20270301",
        "1.5",
        "true",
        "[2027-03-01]",
        "{ date = 2027-03-01 }",
        '"catch_up"',
        '"join_in_progress"',
        '"JOIN_IN_PROGRESS"',
        '"catch up"',
        '""',
        '"\\u0000"',
        "0001-01-01",
        "9999-12-31",
    ]
)


@settings(max_examples=60, deadline=None)
@given(starts_on=st.none() | TOML_VALUES, late_joiners=st.none() | TOML_VALUES)
def test_a_written_cohort_is_read_or_refused_at_its_line(
    starts_on: str | None, late_joiners: str | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("course") / "runners"
    shutil.copytree(EXAMPLE, folder)
    written = [f"starts_on = {starts_on}"] * (starts_on is not None)
    written += [f"late_joiners = {late_joiners}"] * (late_joiners is not None)
    toml = folder / "course.toml"
    toml.write_text(
        toml.read_text().replace(
            "[schedule]\n", "[schedule]\n" + "".join(f"{x}\n" for x in written)
        )
    )

    source = read_course(folder)

    lines = toml.read_text().splitlines()
    cohort_lines = {
        n for n, line in enumerate(lines, 1) if line.startswith(("starts_on", "late_j"))
    }
    if source.problems:
        assert source.settings is None
        assert {p.line for p in source.problems} <= cohort_lines
        assert all(str(p).startswith(f"{toml}:") for p in source.problems)
    else:
        assert source.settings is not None
        assert (source.settings.cohort is None) == (starts_on is None)
        if source.settings.cohort is not None:
            # Every date TOML can write is a cohort's start: its dates can be computed.
            cohort = source.settings.cohort
            assert cohort_slot(cohort, 3, TORONTO, WEEKLY).tzinfo is UTC


def test_a_lesson_passed_over_for_an_audience_leaves_its_cohort_week_empty() -> None:
    keys = [k for _, k in LESSONS[:6]]
    not_l4 = lambda key: key != "l4"  # noqa: E731 - the audience of one person
    # They had lessons 1 to 3; lesson 4 (not for them) was due on the cohort's date, 22 March.
    due = cohort_slot(MARCH, 4, LONDON, WEEKLY)

    key = owed_lesson(keys, ["l1", "l2", "l3"], due, LONDON, WEEKLY, MARCH, not_l4)

    assert key == "l5"
    # Lesson 5 waits for its own date: nobody is ahead of the cohort.
    assert local(owed_at(5, due, LONDON, WEEKLY, MARCH), LONDON) == (date(2027, 3, 29), time(8))
    # Without a cohort the next lesson takes the skipped one's day.
    assert owed_at(5, due, LONDON, WEEKLY, None) == due


def test_a_joiner_in_progress_whose_current_lesson_is_not_for_them_gets_the_next_one() -> None:
    cohort = Cohort(MARCH.starts_on, LateJoiners.JOIN_IN_PROGRESS)
    keys = [k for _, k in LESSONS[:6]]
    due = starting_due(utc(2027, 3, 17, 15), cohort, LONDON, WEEKLY)  # the current lesson is 3

    assert owed_lesson(keys, [], due, LONDON, WEEKLY, cohort) == "l3"
    assert owed_lesson(keys, [], due, LONDON, WEEKLY, cohort, lambda key: key != "l3") == "l4"
    # Calendars of such a person number the lessons as the course does.
    plan = plan_from_joining(
        [x for x in LESSONS[:6] if x[1] != "l3"], utc(2027, 3, 17, 15), cohort, LONDON, WEEKLY
    )
    assert [(p.number, p.skipped) for p in plan][:3] == [
        (1, BEFORE_JOINING),
        (2, BEFORE_JOINING),
        (4, None),
    ]
    assert local(plan[2].due_at, LONDON)[0] == date(2027, 3, 22)
