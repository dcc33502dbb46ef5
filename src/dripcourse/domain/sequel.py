"""When what follows a finished course is due: the completion email and the next course's first
lesson (`[next] course`). Pure arithmetic over the schedule's rules, no I/O.

The end of a course keeps its rhythm: the completion email goes at the slot the next lesson would
have had. The next course's lesson 1 then goes at that course's first slot on a *later local day*
than the completion email (two emails of the same clinic on one morning read like a mistake), or,
without a completion email, at that course's first slot at or after the same moment.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dripcourse.domain.cohort import Cohort, starting_due
from dripcourse.domain.schedule import Rhythm, first_slot_at_or_after, slot_on

NEXT_COURSE_SOURCE = "next-course"
"""`enrollments.source` of an enrolment made at the end of another course (consent carried over)."""


def next_course_start(
    slot: datetime,
    now: datetime,
    zone: ZoneInfo,
    rhythm: Rhythm,
    *,
    after_completion: bool,
    cohort: Cohort | None = None,
) -> datetime:
    """When lesson 1 of the next course is due for a person in `zone` who finished at `slot`
    (the slot their next lesson would have had; a late pass may find it already past, and then
    counts from `now`), in the next course's `rhythm`; never before the first date of the next
    course's `cohort`, when it is a cohort course."""
    start = max(slot, now)
    if after_completion:
        following_day = start.astimezone(zone).date() + timedelta(days=1)
        start = slot_on(following_day, zone, time(0, 0))
    if cohort is not None:
        return starting_due(start, cohort, zone, rhythm)
    return first_slot_at_or_after(start, zone, rhythm)


def carried_over(finished: str, following: str) -> str:
    """The audit entry's words for an enrolment made at the end of a course."""
    return f"enrolled in {following} (consent carried over from {finished})"
