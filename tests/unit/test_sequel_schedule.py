"""When the next course's lesson 1 is due (`domain/sequel.next_course_start`): hypothesis over zones
with odd offsets and DST changes, any send time (those in gaps and overlaps included) and any
send days; and the worked case across Toronto's spring change."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from test_schedule import PROPERTY, plain_instants, rhythms, zones

from dripcourse.domain.cohort import Cohort
from dripcourse.domain.schedule import Rhythm, first_slot_at_or_after
from dripcourse.domain.sequel import next_course_start

TORONTO = ZoneInfo("America/Toronto")


@PROPERTY
@given(zones, plain_instants, st.integers(-3 * 24 * 60, 3 * 24 * 60), rhythms, st.booleans())
def test_lesson_one_is_a_slot_of_the_next_course_never_before_the_end(
    zone, slot, lateness_minutes, rhythm, after_completion
) -> None:
    now = slot + timedelta(minutes=lateness_minutes)
    start = next_course_start(slot, now, zone, rhythm, after_completion=after_completion)
    end = max(slot, now)
    assert start >= end
    # A slot of the next course: it is its own first slot at or after itself.
    assert first_slot_at_or_after(start, zone, rhythm) == start
    if after_completion:
        # Never the morning of the completion email: a later local day, and the first slot there.
        assert start.astimezone(zone).date() > end.astimezone(zone).date()
        # ...and the first slot of that day or after it: any earlier slot is on the same day.
        earlier = first_slot_at_or_after(end + timedelta(seconds=1), zone, rhythm)
        assert earlier == start or earlier.astimezone(zone).date() <= end.astimezone(zone).date()
    else:
        assert start == first_slot_at_or_after(end, zone, rhythm)


def test_the_morning_after_the_completion_email_across_the_spring_change() -> None:
    weekly_at_0730 = Rhythm(cadence_days=3, send_time=datetime(1, 1, 1, 7, 30).time())
    # The completion email on Saturday 13 March 2027 at 08:00 EST; the clocks go forward that night.
    slot = datetime(2027, 3, 13, 13, 0, tzinfo=UTC)
    start = next_course_start(slot, slot, TORONTO, weekly_at_0730, after_completion=True)
    assert start == datetime(2027, 3, 14, 11, 30, tzinfo=UTC)  # Sunday 07:30 EDT
    without = next_course_start(slot, slot, TORONTO, weekly_at_0730, after_completion=False)
    assert without == datetime(2027, 3, 14, 11, 30, tzinfo=UTC)  # 07:30 Saturday has passed


def test_a_next_course_that_is_a_cohort_starts_on_its_cohort_date() -> None:
    # Phase 1 ends before Toronto's spring change; phase 2 is a cohort starting after it.
    rhythm = Rhythm(send_time=time(7, 30))
    cohort = Cohort(date(2027, 3, 22))
    slot = datetime(2027, 3, 9, 13, 0, tzinfo=UTC)  # 08:00 EST

    start = next_course_start(slot, slot, TORONTO, rhythm, after_completion=True, cohort=cohort)

    # 07:30 EDT on the cohort's first day, not the morning after the completion email.
    assert start == datetime(2027, 3, 22, 11, 30, tzinfo=UTC)
    # Once the cohort has begun, the person starts the day after the completion email.
    late = datetime(2027, 3, 30, 12, 0, tzinfo=UTC)
    start = next_course_start(late, late, TORONTO, rhythm, after_completion=True, cohort=cohort)
    assert start == datetime(2027, 3, 31, 11, 30, tzinfo=UTC)
