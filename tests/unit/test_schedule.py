"""Tests of `dripcourse.domain.schedule`: when lessons are due, what is owed next, when to retry.

Examples pin down the cases people get wrong (DST on both hemispheres, odd offsets, local vs UTC
weekdays and dates, downtime); the properties check the same rules over many zones and instants,
with extra weight on the days around each zone's DST transitions, where the bugs live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dripcourse.domain.schedule import (
    RetryPolicy,
    Rhythm,
    first_lesson_due,
    first_slot_at_or_after,
    following_lesson_due,
    next_lesson,
    next_lesson_due,
    parse_send_days,
    parse_send_time,
    plan_from_start,
    resumed_due,
    retry_at,
    same_local_day,
    should_give_up,
    slot_on,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")
CHATHAM = ZoneInfo("Pacific/Chatham")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKLY = Rhythm()
DAILY = Rhythm(cadence_days=1)
MON_WED_FRI = frozenset({MON, WED, FRI})


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def offset_hours(instant: datetime, zone: ZoneInfo) -> float:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset.total_seconds() / 3600


def local_wall(instant: datetime, zone: ZoneInfo) -> tuple[date, time]:
    local = instant.astimezone(zone)
    return local.date(), local.time()


# --- slot_on -------------------------------------------------------------------------------------


def test_slot_on_plain_day() -> None:
    assert slot_on(date(2026, 1, 5), NEW_YORK, time(8, 0)) == utc(2026, 1, 5, 13, 0)
    assert slot_on(date(2026, 7, 6), NEW_YORK, time(8, 0)) == utc(2026, 7, 6, 12, 0)


def test_slot_on_spring_forward_gap_moves_forward_by_the_gap() -> None:
    # New York, 2026-03-08: 02:00 EST -> 03:00 EDT; 02:30 does not exist.
    slot = slot_on(date(2026, 3, 8), NEW_YORK, time(2, 30))
    assert local_wall(slot, NEW_YORK) == (date(2026, 3, 8), time(3, 30))
    assert slot == utc(2026, 3, 8, 7, 30)
    # Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST.
    slot = slot_on(date(2026, 3, 29), BERLIN, time(2, 30))
    assert local_wall(slot, BERLIN) == (date(2026, 3, 29), time(3, 30))


def test_slot_on_fall_back_overlap_is_the_first_occurrence() -> None:
    # New York, 2026-11-01: 01:00-02:00 happens twice, first in EDT (-4), then in EST (-5).
    slot = slot_on(date(2026, 11, 1), NEW_YORK, time(1, 30))
    assert slot == utc(2026, 11, 1, 5, 30)
    assert offset_hours(slot, NEW_YORK) == -4


def test_slot_on_ignores_a_fold_on_the_send_time() -> None:
    folded = time(1, 30, fold=1)
    assert slot_on(date(2026, 11, 1), NEW_YORK, folded) == utc(2026, 11, 1, 5, 30)


def test_slot_on_refuses_an_aware_send_time() -> None:
    with pytest.raises(ValueError, match="send_time"):
        slot_on(date(2026, 1, 5), NEW_YORK, time(8, 0, tzinfo=UTC))


# --- DST across a weekly lesson ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "sent", "due", "offsets"),
    [
        # New York spring forward (2026-03-08) and fall back (2026-11-01).
        (NEW_YORK, utc(2026, 3, 1, 13, 0), utc(2026, 3, 8, 12, 0), (-5, -4)),
        (NEW_YORK, utc(2026, 10, 25, 12, 0), utc(2026, 11, 1, 13, 0), (-4, -5)),
        # Berlin: 2026-03-29 and 2026-10-25.
        (BERLIN, utc(2026, 3, 22, 7, 0), utc(2026, 3, 29, 6, 0), (1, 2)),
        (BERLIN, utc(2026, 10, 18, 6, 0), utc(2026, 10, 25, 7, 0), (2, 1)),
        # Sydney, southern hemisphere: DST ends 2026-04-05 and starts 2026-10-04. 08:00 local is
        # still the previous day in UTC.
        (SYDNEY, utc(2026, 3, 28, 21, 0), utc(2026, 4, 4, 22, 0), (11, 10)),
        (SYDNEY, utc(2026, 9, 26, 22, 0), utc(2026, 10, 3, 21, 0), (10, 11)),
        # Chatham, +13:45 in its summer, +12:45 in winter; DST ends 2026-04-05.
        (CHATHAM, utc(2026, 3, 28, 18, 15), utc(2026, 4, 4, 19, 15), (13.75, 12.75)),
    ],
)
def test_weekly_lesson_keeps_local_send_time_across_dst(
    zone: ZoneInfo, sent: datetime, due: datetime, offsets: tuple[float, float]
) -> None:
    assert local_wall(sent, zone)[1] == time(8, 0)
    result = next_lesson_due(sent, zone, WEEKLY)
    assert result == due
    assert local_wall(result, zone) == (local_wall(sent, zone)[0] + timedelta(days=7), time(8, 0))
    assert (offset_hours(sent, zone), offset_hours(result, zone)) == offsets
    assert abs(offsets[1] - offsets[0]) == 1
    assert result - sent == timedelta(days=7) - timedelta(hours=offsets[1] - offsets[0])


def test_fixed_odd_offsets() -> None:
    # Kolkata is +05:30 all year.
    due = first_lesson_due(utc(2026, 1, 5, 0, 0), KOLKATA, WEEKLY)
    assert due == utc(2026, 1, 5, 2, 30)
    assert next_lesson_due(due, KOLKATA, WEEKLY) == utc(2026, 1, 12, 2, 30)
    # Chatham in July is +12:45, so 08:00 local is 19:15 UTC the day before.
    assert slot_on(date(2026, 7, 6), CHATHAM, time(8, 0)) == utc(2026, 7, 5, 19, 15)
    # In January (+13:45), an enrolment at 01:45 local Tuesday gets 08:00 local Tuesday.
    assert first_lesson_due(utc(2026, 1, 5, 12, 0), CHATHAM, WEEKLY) == utc(2026, 1, 5, 18, 15)


def test_kiritimati_uses_the_local_weekday_not_the_utc_one() -> None:
    # +14: Monday 17:00 UTC is already Tuesday 07:00 in Kiritimati.
    tuesdays = Rhythm(send_days=frozenset({TUE}))
    due = first_lesson_due(utc(2026, 1, 5, 17, 0), KIRITIMATI, tuesdays)
    assert due == utc(2026, 1, 5, 18, 0)
    assert due.weekday() == MON
    assert due.astimezone(KIRITIMATI).weekday() == TUE
    assert local_wall(due, KIRITIMATI)[1] == time(8, 0)


def test_next_lesson_counts_days_from_the_local_date_of_the_send() -> None:
    # 23:30 on Monday 5 January in New York is already Tuesday in UTC; the local date counts.
    sent = utc(2026, 1, 6, 4, 30)
    assert next_lesson_due(sent, NEW_YORK, WEEKLY) == utc(2026, 1, 12, 13, 0)


# --- weekdays, boundaries, downtime --------------------------------------------------------------


def test_lesson_that_would_fall_on_saturday_moves_to_monday() -> None:
    rhythm = Rhythm(cadence_days=8, send_days=MON_WED_FRI)
    friday = utc(2026, 1, 2, 7, 0)  # 08:00 in Berlin
    assert next_lesson_due(friday, BERLIN, rhythm) == utc(2026, 1, 12, 7, 0)  # Monday, not Sat 10th
    daily_mwf = Rhythm(cadence_days=1, send_days=MON_WED_FRI)
    assert next_lesson_due(utc(2026, 1, 9, 7, 0), BERLIN, daily_mwf) == utc(2026, 1, 12, 7, 0)


def test_cadence_3_on_mondays_and_wednesdays_is_weekly_and_cadence_2_uses_both_days() -> None:
    # The rule (docs/course-format.md, "When lessons go out"): a lesson is owed cadence_days local
    # days after the one before was due, then waits for the next send day. Monday + 3 is Thursday,
    # which waits for Monday, so Wednesday is never reached: weekly. Lessons are never closer than
    # cadence_days; a course that wants both days asks for cadence 2 (or 1).
    mon_wed = frozenset({MON, WED})
    monday = utc(2026, 1, 5, 7, 0)  # 08:00 in Berlin
    lessons = [(number, f"lesson-{number}") for number in range(1, 6)]

    every_3 = plan_from_start(lessons, monday, BERLIN, Rhythm(cadence_days=3, send_days=mon_wed))
    every_2 = plan_from_start(lessons, monday, BERLIN, Rhythm(cadence_days=2, send_days=mon_wed))

    assert [local_wall(lesson.due_at, BERLIN) for lesson in every_3] == [
        (date(2026, 1, day), time(8, 0)) for day in (5, 12, 19, 26)
    ] + [(date(2026, 2, 2), time(8, 0))]
    moved = "moved from Thu to Mon: outside the send days"
    assert [lesson.moved_note(BERLIN) for lesson in every_3] == [None, moved, moved, moved, moved]
    assert [local_wall(lesson.due_at, BERLIN)[0].day for lesson in every_2] == [5, 7, 12, 14, 19]


def test_enrolment_on_a_saturday_starts_on_monday() -> None:
    rhythm = Rhythm(send_days=MON_WED_FRI)
    saturday_noon = utc(2026, 1, 10, 11, 0)
    assert first_lesson_due(saturday_noon, BERLIN, rhythm) == utc(2026, 1, 12, 7, 0)


def test_enrolment_exactly_at_the_slot_gets_that_slot() -> None:
    slot = utc(2026, 1, 5, 13, 0)  # Monday 08:00 in New York
    assert first_lesson_due(slot, NEW_YORK, DAILY) == slot
    assert first_lesson_due(slot, NEW_YORK, Rhythm(send_days=MON_WED_FRI)) == slot


def test_enrolment_one_second_after_the_slot_waits_for_the_next_allowed_day() -> None:
    just_after = utc(2026, 1, 5, 13, 0, 1)
    assert first_lesson_due(just_after, NEW_YORK, DAILY) == utc(2026, 1, 6, 13, 0)
    mwf = Rhythm(send_days=MON_WED_FRI)
    assert first_lesson_due(just_after, NEW_YORK, mwf) == utc(2026, 1, 7, 13, 0)


def test_in_the_repeated_hour_a_slot_already_passed_is_not_taken_again() -> None:
    # Between the first and second 01:30 of 2026-11-01 in New York: the day's slot has gone.
    rhythm = Rhythm(cadence_days=1, send_time=time(1, 30))
    between = utc(2026, 11, 1, 6, 0)
    assert first_slot_at_or_after(between, NEW_YORK, rhythm) == utc(2026, 11, 2, 6, 30)


def test_after_downtime_the_next_lesson_keeps_its_spacing_from_the_actual_send() -> None:
    due = utc(2026, 1, 5, 7, 0)  # Monday 08:00 in Berlin
    sent_late = due + timedelta(days=5, hours=2, minutes=12)  # Saturday, after an outage
    result = next_lesson_due(sent_late, BERLIN, WEEKLY)
    assert result == utc(2026, 1, 17, 7, 0)  # Saturday a week on, not Monday the 12th
    assert local_wall(result, BERLIN) == (date(2026, 1, 17), time(8, 0))


# --- pause and resume ----------------------------------------------------------------------------


def test_resume_keeps_the_remaining_wait() -> None:
    due = utc(2026, 1, 12, 7, 0)  # Monday 08:00 Berlin, 3 days after the pause
    paused = utc(2026, 1, 9, 7, 0)
    resumed = paused + timedelta(days=10)
    assert resumed_due(due, paused, resumed, BERLIN, WEEKLY) == utc(2026, 1, 22, 7, 0)


def test_resume_of_an_already_owed_lesson_sends_at_the_next_slot() -> None:
    paused = utc(2026, 1, 9, 12, 0)
    resumed = utc(2026, 1, 20, 9, 0)  # 10:00 local: today's 08:00 has passed
    for due in (None, paused, paused - timedelta(days=2)):
        assert resumed_due(due, paused, resumed, BERLIN, WEEKLY) == utc(2026, 1, 21, 7, 0)


def test_resume_before_pause_is_refused() -> None:
    paused = utc(2026, 1, 9, 12, 0)
    with pytest.raises(ValueError, match="before"):
        resumed_due(None, paused, paused - timedelta(seconds=1), BERLIN, WEEKLY)


# --- next_lesson ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "history", "expected"),
    [
        ("abc", "", "a"),
        ("abc", "a", "b"),
        ("abc", "abc", None),
        ("axbc", "ab", "c"),  # x inserted behind them: they have passed its place
        ("abxc", "a", "b"),  # x inserted ahead of them: they will get it
        ("abcd", "abc", "d"),  # added after they finished
        ("bac", "a", "c"),  # re-ordered: a is now after b, so b is behind them
        ("bc", "a", "b"),  # everything they had was retired
        ("abc", "ac", None),  # b was skipped by an earlier order; c is their place
        ("abc", "zab", "c"),  # retired keys in history are ignored
        ("", "ab", None),
    ],
)
def test_next_lesson_examples(keys: str, history: str, expected: str | None) -> None:
    assert next_lesson(list(keys), list(history)) == expected


def test_next_lesson_refuses_duplicate_keys() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        next_lesson(["a", "b", "a"], [])


# --- retries -------------------------------------------------------------------------------------


def test_retry_delays_double_until_the_cap() -> None:
    failed = utc(2026, 1, 5, 12, 0)
    policy = RetryPolicy()
    delays = [retry_at(n, failed, policy) - failed for n in (1, 2, 3, 4, 7, 8, 50, 10**6)]
    minutes = [5, 10, 20, 40, 320, 360, 360, 360]
    assert delays == [timedelta(minutes=m) for m in minutes]


def test_retry_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="attempts"):
        retry_at(0, utc(2026, 1, 5), RetryPolicy())


def test_give_up_exactly_at_the_deadline() -> None:
    first = utc(2026, 1, 5, 12, 0)
    policy = RetryPolicy()
    assert not should_give_up(first, first + timedelta(days=3, microseconds=-1), policy)
    assert should_give_up(first, first + timedelta(days=3), policy)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_delay": timedelta(0)},
        {"factor": 0.5},
        {"factor": float("inf")},
        {"factor": float("nan")},
        {"max_delay": timedelta(minutes=1)},
        {"give_up_after": timedelta(0)},
    ],
)
def test_retry_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


# --- validation and parsing ----------------------------------------------------------------------


def test_rhythm_defaults() -> None:
    assert Rhythm(7, time(8, 0), frozenset(range(7))) == WEEKLY


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cadence_days": 0}, "cadence_days"),
        ({"send_days": frozenset()}, "at least one"),
        ({"send_days": frozenset({0, 7})}, r"\[7\]"),
        ({"send_days": frozenset({-1})}, r"\[-1\]"),
        ({"send_time": time(8, 0, tzinfo=UTC)}, "send_time"),
    ],
)
def test_rhythm_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rhythm(**kwargs)


NAIVE = datetime(2026, 1, 5, 12, 0)
AWARE = utc(2026, 1, 5, 12, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: first_slot_at_or_after(NAIVE, BERLIN, WEEKLY),
        lambda: first_lesson_due(NAIVE, BERLIN, WEEKLY),
        lambda: next_lesson_due(NAIVE, BERLIN, WEEKLY),
        lambda: resumed_due(NAIVE, AWARE, AWARE, BERLIN, WEEKLY),
        lambda: resumed_due(None, NAIVE, AWARE, BERLIN, WEEKLY),
        lambda: resumed_due(None, AWARE, NAIVE, BERLIN, WEEKLY),
        lambda: retry_at(1, NAIVE, RetryPolicy()),
        lambda: should_give_up(NAIVE, AWARE, RetryPolicy()),
        lambda: should_give_up(AWARE, NAIVE, RetryPolicy()),
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()


def test_aware_non_utc_input_gives_utc_output() -> None:
    enrolled = datetime(2026, 1, 5, 6, 0, tzinfo=BERLIN)
    due = first_lesson_due(enrolled, BERLIN, WEEKLY)
    assert due == utc(2026, 1, 5, 7, 0)
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["mon", "wed", "fri"], {0, 2, 4}),
        (["Monday", "TUESDAY", "sUn"], {0, 1, 6}),
        ([" sat ", "sat"], {5}),
        (["mon", "tue", "wed", "thu", "fri", "sat", "sun"], set(range(7))),
    ],
)
def test_parse_send_days(names: list[str], expected: set[int]) -> None:
    assert parse_send_days(names) == frozenset(expected)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["mon", "funday"], "'funday'"),
        (["mo"], "'mo'"),
        (["mon", ""], "''"),
        ([], "at least one"),
        ("mon", "not the string 'mon'"),
    ],
)
def test_parse_send_days_rejects(names: Sequence[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_send_days(names)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("08:00", time(8, 0)), ("23:59", time(23, 59)), ("00:00", time(0, 0)), ("7:05", time(7, 5))],
)
def test_parse_send_time(text: str, expected: time) -> None:
    assert parse_send_time(text) == expected


@pytest.mark.parametrize(
    "text", ["24:00", "08:60", "8", "08:00:00", "8am", "", "08.00", "-1:00", "\uff10\uff18:00"]
)
def test_parse_send_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="send_time"):
        parse_send_time(text)


# --- properties ----------------------------------------------------------------------------------

ZONE_KEYS = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",  # -03:30 with DST
    "America/Santiago",  # southern DST, changes at midnight
    "America/Havana",  # changes at midnight
    "Europe/London",
    "Europe/Dublin",  # "negative" DST in tzdata
    "Europe/Berlin",
    "Africa/Cairo",  # DST back since 2023
    "Asia/Tehran",  # +03:30, DST until 2022
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
]
ZONES = [ZoneInfo(key) for key in ZONE_KEYS]
FIRST_DAY, LAST_DAY = date(2020, 1, 1), date(2035, 12, 31)
PROPERTY = settings(max_examples=200, deadline=None)


@cache
def transition_days(zone: ZoneInfo) -> tuple[date, ...]:
    """UTC dates in 2020-2035 on whose noon-to-noon span the zone's offset changes."""
    days = []
    day = FIRST_DAY
    previous = datetime.combine(day, time(12), tzinfo=UTC).astimezone(zone).utcoffset()
    while day < LAST_DAY:
        day += timedelta(days=1)
        offset = datetime.combine(day, time(12), tzinfo=UTC).astimezone(zone).utcoffset()
        if offset != previous:
            days.append(day)
        previous = offset
    return tuple(days)


zones = st.sampled_from(ZONES)
plain_instants = st.datetimes(
    min_value=datetime.combine(FIRST_DAY, time(0)),
    max_value=datetime.combine(LAST_DAY, time(23, 59, 59)),
    timezones=st.just(UTC),
)
send_times = st.one_of(
    st.builds(time, st.integers(0, 23), st.integers(0, 59)),
    # Transitions happen in the small hours; these send times land in gaps and overlaps.
    st.builds(time, st.integers(0, 3), st.sampled_from([0, 15, 30, 45])),
)
rhythms = st.builds(
    Rhythm,
    cadence_days=st.integers(1, 30),
    send_time=send_times,
    send_days=st.frozensets(st.integers(0, 6), min_size=1),
)


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    zone = draw(zones)
    transitions = transition_days(zone)
    near_transition = draw(st.booleans())
    if transitions and near_transition:
        day = draw(st.sampled_from(transitions))
        around = st.timedeltas(min_value=timedelta(days=-8), max_value=timedelta(days=2))
        return zone, datetime.combine(day, time(0), tzinfo=UTC) + draw(around)
    return zone, draw(plain_instants)


def wall_time_exists(day: date, wall: time, zone: ZoneInfo) -> bool:
    naive = datetime.combine(day, wall)
    back = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == naive


def assert_is_slot(instant: datetime, zone: ZoneInfo, rhythm: Rhythm) -> None:
    """`instant` is UTC, on an allowed local weekday, at send_time (or just past its gap)."""
    assert instant.tzinfo is UTC
    local = instant.astimezone(zone)
    assert local.weekday() in rhythm.send_days
    if wall_time_exists(local.date(), rhythm.send_time, zone):
        assert local.time() == rhythm.send_time
        assert local.fold == 0, "a repeated wall time must be its first occurrence"
    else:
        wanted = datetime.combine(local.date(), rhythm.send_time)
        before = wanted.replace(tzinfo=zone, fold=0).utcoffset()
        after = wanted.replace(tzinfo=zone, fold=1).utcoffset()
        assert before is not None and after is not None
        gap = after - before
        assert gap > timedelta(0)
        assert local.replace(tzinfo=None) == wanted + gap


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


@PROPERTY
@given(zone_and_instant(), rhythms)
@example((NEW_YORK, utc(2026, 3, 8, 5, 0)), Rhythm(send_time=time(2, 30)))
@example((NEW_YORK, utc(2026, 11, 1, 5, 45)), Rhythm(send_time=time(1, 30)))
def test_first_lesson_is_the_earliest_slot_within_a_week(
    zone_instant: tuple[ZoneInfo, datetime], rhythm: Rhythm
) -> None:
    zone, enrolled = zone_instant
    due = first_lesson_due(enrolled, zone, rhythm)
    # (1) not before enrolment, and within a week and a bit (DST can add an hour).
    assert enrolled <= due < enrolled + timedelta(days=8)
    # (2) at send_time local, (3) on an allowed weekday.
    assert_is_slot(due, zone, rhythm)
    # No allowed slot between enrolment and the answer.
    start = local_date(enrolled, zone)
    for offset in range(-1, 9):
        day = start + timedelta(days=offset)
        candidate = slot_on(day, zone, rhythm.send_time)
        if candidate >= enrolled and local_date(candidate, zone).weekday() in rhythm.send_days:
            assert candidate >= due
    # A slot is its own first slot.
    assert first_slot_at_or_after(due, zone, rhythm) == due


@st.composite
def zone_and_day(draw: st.DrawFn) -> tuple[ZoneInfo, date]:
    zone = draw(zones)
    transitions = transition_days(zone)
    near_transition = draw(st.booleans())
    if transitions and near_transition:
        # The offset changed within a day of this UTC date, so the local change is on one of these.
        return zone, draw(st.sampled_from(transitions)) + timedelta(days=draw(st.integers(-1, 1)))
    return zone, draw(st.dates(FIRST_DAY, LAST_DAY))


@PROPERTY
@given(zone_and_day(), send_times)
def test_slot_on_is_send_time_local_or_just_past_a_gap(
    zone_day: tuple[ZoneInfo, date], send_time: time
) -> None:
    zone, day = zone_day
    slot = slot_on(day, zone, send_time)
    assert local_date(slot, zone) == day
    assert_is_slot(slot, zone, Rhythm(send_time=send_time))


@PROPERTY
@given(zone_and_instant(), rhythms)
def test_next_lesson_is_cadence_local_days_later_on_an_allowed_day(
    zone_instant: tuple[ZoneInfo, datetime], rhythm: Rhythm
) -> None:
    zone, previous = zone_instant
    due = next_lesson_due(previous, zone, rhythm)
    # (4) strictly later, cadence_days local calendar days on, plus at most a week of weekdays.
    assert due > previous
    gap = (local_date(due, zone) - local_date(previous, zone)).days
    assert rhythm.cadence_days <= gap < rhythm.cadence_days + 7
    assert_is_slot(due, zone, rhythm)
    # It is the first allowed day on or after the target date.
    target = local_date(previous, zone) + timedelta(days=rhythm.cadence_days)
    skipped = range((local_date(due, zone) - target).days)
    assert all((target + timedelta(days=d)).weekday() not in rhythm.send_days for d in skipped)


@settings(max_examples=100, deadline=None)
@given(zone_and_instant(), rhythms)
def test_a_course_never_sends_two_lessons_on_one_local_day(
    zone_instant: tuple[ZoneInfo, datetime], rhythm: Rhythm
) -> None:
    zone, enrolled = zone_instant
    lessons = [first_lesson_due(enrolled, zone, rhythm)]
    for _ in range(11):
        lessons.append(next_lesson_due(lessons[-1], zone, rhythm))
    # (5) twelve lessons, twelve different local dates, in order, each one a proper slot.
    dates = [local_date(lesson, zone) for lesson in lessons]
    assert dates == sorted(set(dates))
    assert lessons == sorted(lessons)
    for lesson in lessons:
        assert_is_slot(lesson, zone, rhythm)


@PROPERTY
@given(
    zone_and_instant(),
    rhythms,
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)),
    st.none() | st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=30)),
)
def test_resume_continues_where_the_pause_stopped(
    zone_instant: tuple[ZoneInfo, datetime],
    rhythm: Rhythm,
    pause: timedelta,
    due_offset: timedelta | None,
) -> None:
    zone, paused = zone_instant
    resumed = paused + pause
    due = None if due_offset is None else paused + due_offset
    result = resumed_due(due, paused, resumed, zone, rhythm)
    # (6)
    assert_is_slot(result, zone, rhythm)
    assert result >= resumed
    if due is None or due <= paused:
        assert result == first_slot_at_or_after(resumed, zone, rhythm)
        assert result < resumed + timedelta(days=8)
    else:
        assert due + pause <= result < due + pause + timedelta(days=8)


def reference_next_lesson(lesson_keys: list[str], history: list[str]) -> str | None:
    still_there = [key for key in history if key in lesson_keys]
    place = lesson_keys.index(still_there[-1]) + 1 if still_there else 0
    owed = [key for key in lesson_keys[place:] if key not in history]
    return owed[0] if owed else None


lesson_key_lists = st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8)
histories = st.lists(st.sampled_from("abcdefghijk"), max_size=12)


@PROPERTY
@given(lesson_key_lists, histories)
def test_next_lesson_matches_the_reference_rule(lesson_keys: list[str], history: list[str]) -> None:
    result = next_lesson(lesson_keys, history)
    # (7)
    assert result is None or (result in lesson_keys and result not in history)
    still_there = [key for key in history if key in lesson_keys]
    place = lesson_keys.index(still_there[-1]) + 1 if still_there else 0
    assert (result is None) == all(key in history for key in lesson_keys[place:])
    if result is not None:
        assert lesson_keys.index(result) >= place
    assert result == reference_next_lesson(lesson_keys, history)


@PROPERTY
@given(lesson_key_lists, histories)
def test_following_next_lesson_sends_each_remaining_lesson_once(
    lesson_keys: list[str], history: list[str]
) -> None:
    sent: list[str] = []
    while (key := next_lesson(lesson_keys, history + sent)) is not None:
        assert key not in sent
        sent.append(key)
        assert len(sent) <= len(lesson_keys)
    still_there = [key for key in history if key in lesson_keys]
    place = lesson_keys.index(still_there[-1]) + 1 if still_there else 0
    assert sent == [key for key in lesson_keys[place:] if key not in history]


retry_policies = st.builds(
    lambda first, factor, extra, give_up: RetryPolicy(first, factor, first + extra, give_up),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=1)),
    st.floats(min_value=1.0, max_value=10.0),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
    st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=10)),
)


@PROPERTY
@given(retry_policies, plain_instants)
def test_retry_delays_grow_and_are_capped(policy: RetryPolicy, failed: datetime) -> None:
    delays = [retry_at(n, failed, policy) - failed for n in range(1, 41)]
    # (8)
    assert delays[0] == policy.first_delay
    assert all(a <= b for a, b in pairwise(delays))
    assert all(delay <= policy.max_delay for delay in delays)
    if policy.factor >= 1.5:
        assert delays[-1] == policy.max_delay
        # So far past the cap that the exact delay would overflow a float.
        assert retry_at(10**9, failed, policy) - failed == policy.max_delay


@PROPERTY
@given(
    retry_policies,
    plain_instants,
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
)
def test_give_up_once_the_deadline_has_passed(
    policy: RetryPolicy, first: datetime, elapsed: timedelta
) -> None:
    assert should_give_up(first, first + elapsed, policy) == (elapsed >= policy.give_up_after)


# --- following_lesson_due: in the rhythm, unless the previous lesson went out very late ----------


def test_a_lesson_sent_hours_late_keeps_the_persons_weekday() -> None:
    # Due Tuesday 08:00 in Sydney, sent 18 hours late by a pass that ran late.
    due = slot_on(date(2026, 3, 3), SYDNEY, time(8, 0))
    sent = due + timedelta(hours=18)
    following = following_lesson_due(due, sent, SYDNEY, WEEKLY)
    assert following.astimezone(SYDNEY).replace(tzinfo=None) == datetime(2026, 3, 10, 8, 0)


def test_a_lesson_sent_days_late_keeps_its_spacing_from_the_actual_send() -> None:
    due = slot_on(date(2026, 3, 3), BERLIN, time(8, 0))
    sent = due + timedelta(days=5, hours=2)  # after a downtime: Sunday 10:00
    following = following_lesson_due(due, sent, BERLIN, WEEKLY)
    assert following.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 15, 8, 0)


@PROPERTY
@given(zone_and_instant(), rhythms, st.timedeltas(timedelta(0), timedelta(days=60)))
def test_the_following_lesson_never_comes_in_a_burst(
    zone_instant: tuple[ZoneInfo, datetime], rhythm: Rhythm, lateness: timedelta
) -> None:
    zone, previous_due = zone_instant
    sent = previous_due + lateness
    following = following_lesson_due(previous_due, sent, zone, rhythm)
    assert following > sent
    assert_is_slot(following, zone, rhythm)
    # Either in the rhythm with at least half a cadence to breathe, or a full cadence of local
    # days after the late send.
    in_rhythm = following == next_lesson_due(previous_due, zone, rhythm)
    breathing = following - sent >= timedelta(days=rhythm.cadence_days) / 2
    assert (in_rhythm and breathing) or following == next_lesson_due(sent, zone, rhythm)


def test_moving_to_another_zone_keeps_the_local_date_and_send_time() -> None:
    due_in_berlin = slot_on(date(2026, 3, 10), BERLIN, time(8, 0))
    moved = same_local_day(due_in_berlin, BERLIN, SYDNEY, WEEKLY)
    assert moved.astimezone(SYDNEY).replace(tzinfo=None) == datetime(2026, 3, 10, 8, 0)
    # Never into the past: if that moment has gone, the next slot.
    later = same_local_day(due_in_berlin, BERLIN, SYDNEY, WEEKLY, not_before=due_in_berlin)
    assert later >= due_in_berlin
    assert later.astimezone(SYDNEY).time() == time(8, 0)
