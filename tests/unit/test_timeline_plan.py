"""Tests of the pure planner in `dripcourse.app.timeline`: when each lesson still owed will go out.

Examples pin down what a reader checks by hand (08:00 local across the DST changes of both
hemispheres, lessons moved off days outside the send days, spacing kept after a late send); the
property checks the same rules over many zones, starts and rhythms.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from dripcourse.domain.schedule import PlannedLesson, Rhythm, plan_from_start, plan_lessons

BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
TORONTO = ZoneInfo("America/Toronto")
KOLKATA = ZoneInfo("Asia/Kolkata")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKDAYS = frozenset({MON, TUE, WED, THU, FRI})
TEN = [(n, f"lesson-{n}") for n in range(1, 11)]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(lessons: list[PlannedLesson], zone: ZoneInfo) -> list[str]:
    return [f"{lesson.due_at.astimezone(zone):%a %Y-%m-%d %H:%M}" for lesson in lessons]


def test_weekly_lessons_stay_at_eight_in_berlin_across_the_march_change():
    # Subscribed Monday 2 March 2026, 16:00 in Berlin; clocks go forward on Sunday 29 March.
    plan = plan_from_start(TEN[:6], utc(2026, 3, 2, 15), BERLIN, Rhythm())
    assert local(plan, BERLIN) == [
        "Tue 2026-03-03 08:00",
        "Tue 2026-03-10 08:00",
        "Tue 2026-03-17 08:00",
        "Tue 2026-03-24 08:00",
        "Tue 2026-03-31 08:00",
        "Tue 2026-04-07 08:00",
    ]
    # ... which is 07:00 UTC before the change and 06:00 UTC after it.
    assert [lesson.due_at.hour for lesson in plan] == [7, 7, 7, 7, 6, 6]
    assert [lesson.moved_from for lesson in plan] == [None] * 6


def test_weekly_lessons_stay_at_eight_in_sydney_across_the_april_change():
    # Sydney leaves daylight time on Sunday 5 April 2026: 08:00 moves from 21:00 to 22:00 UTC.
    plan = plan_from_start(TEN[:3], utc(2026, 3, 24, 0), SYDNEY, Rhythm())
    assert local(plan, SYDNEY) == [
        "Wed 2026-03-25 08:00",
        "Wed 2026-04-01 08:00",
        "Wed 2026-04-08 08:00",
    ]
    assert [(lesson.due_at.day, lesson.due_at.hour) for lesson in plan] == [
        (24, 21),
        (31, 21),
        (7, 22),
    ]


def test_a_lesson_landing_outside_the_send_days_moves_to_the_next_one_and_says_so():
    rhythm = Rhythm(cadence_days=3, send_days=WEEKDAYS)
    plan = plan_from_start(TEN[:5], utc(2026, 3, 2, 5), BERLIN, rhythm)  # Monday, 06:00 local
    assert local(plan, BERLIN) == [
        "Mon 2026-03-02 08:00",
        "Thu 2026-03-05 08:00",
        "Mon 2026-03-09 08:00",  # three days after Thursday is a Sunday
        "Thu 2026-03-12 08:00",  # the rhythm goes on from when lesson 3 was due
        "Mon 2026-03-16 08:00",
    ]
    assert [lesson.moved_from for lesson in plan] == [
        None,
        None,
        date(2026, 3, 8),
        None,
        date(2026, 3, 15),
    ]
    assert plan[2].moved_note(BERLIN) == "moved from Sun to Mon: outside the send days"
    assert plan[0].moved_note(BERLIN) is None


def test_lesson_one_of_a_weekend_sign_up_moves_to_monday():
    rhythm = Rhythm(send_days=WEEKDAYS)
    # Saturday 7 March 2026, 06:00 in Toronto: the first slot would be Saturday 08:00.
    plan = plan_from_start(TEN[:2], utc(2026, 3, 7, 11), TORONTO, rhythm)
    assert local(plan, TORONTO) == ["Mon 2026-03-09 08:00", "Mon 2026-03-16 08:00"]
    assert plan[0].moved_note(TORONTO) == "moved from Sat to Mon: outside the send days"
    assert plan[1].moved_from is None


def test_an_overdue_lesson_keeps_the_spacing_from_when_it_actually_goes_out():
    # Lesson 4 was due Tuesday 24 March; the scheduler was down and sends it on Sunday 29 March.
    due = utc(2026, 3, 24, 7)
    plan = plan_lessons(
        [(4, "knees"), (5, "hips")],
        due,
        BERLIN,
        Rhythm(),
        first_sent_at=utc(2026, 3, 29, 12),
    )
    assert local(plan, BERLIN) == ["Tue 2026-03-24 08:00", "Sun 2026-04-05 08:00"]
    # A few hours late is no downtime: the person keeps their weekday.
    plan = plan_lessons(
        [(4, "knees"), (5, "hips")], due, BERLIN, Rhythm(), first_sent_at=utc(2026, 3, 24, 15)
    )
    assert local(plan, BERLIN) == ["Tue 2026-03-24 08:00", "Tue 2026-03-31 08:00"]


def test_nothing_owed_plans_nothing():
    assert plan_lessons([], utc(2026, 3, 3, 7), BERLIN, Rhythm()) == []


ZONES = [BERLIN, SYDNEY, TORONTO, KOLKATA, ZoneInfo("Pacific/Chatham"), ZoneInfo("UTC")]


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    cadence=st.integers(min_value=1, max_value=10),
    send_days=st.frozensets(st.integers(min_value=0, max_value=6), min_size=1),
    hour=st.integers(min_value=5, max_value=22),
)
def test_every_lesson_is_at_the_send_time_on_a_send_day_and_moves_only_off_other_days(
    zone: ZoneInfo, start: datetime, cadence: int, send_days: frozenset[int], hour: int
) -> None:
    rhythm = Rhythm(cadence_days=cadence, send_time=time(hour, 0), send_days=send_days)
    plan = plan_from_start(TEN, start, zone, rhythm)
    assert [lesson.number for lesson in plan] == list(range(1, 11))
    assert plan[0].due_at >= start
    days = [lesson.due_at.astimezone(zone) for lesson in plan]
    for day in days:
        assert (day.hour, day.minute) == (hour, 0)
        assert day.weekday() in send_days
    for before, after, lesson in zip(days, days[1:], plan[1:], strict=False):
        on_rhythm = before.date() + timedelta(days=cadence)
        if lesson.moved_from is None:
            assert after.date() == on_rhythm
        else:
            # Moved: off the rhythm's day, which is not a send day, to the next send day.
            assert lesson.moved_from == on_rhythm
            assert on_rhythm.weekday() not in send_days
            assert after.date() > on_rhythm
            between = (
                on_rhythm + timedelta(days=n) for n in range((after.date() - on_rhythm).days)
            )
            assert all(d.weekday() not in send_days for d in between)
