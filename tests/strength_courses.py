"""Two small courses written for the tests of early lessons, the completion email and the next
course: `strength-phase-1` (four weekly lessons at 08:00, early lessons allowed, a completion
email, then `strength-phase-2`) and `strength-phase-2` (two lessons, every three days at 07:30).
Written here in our own words, not copied from any real course."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from dripcourse.app import overview
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.sending.dispatch import Dispatcher, Sent
from dripcourse.store.db import Database

COMMON = """
brand = "Northside Physio"

[sender]
name = "Northside Physio"
email = "course@northside-physio.example"

[footer]
postal_address = "418 Birchmount Lane, Toronto ON, Canada"
"""

PHASE_1 = (
    'title = "Strength, phase 1"\n'
    + COMMON
    + """
[schedule]
cadence_days = 7
send_time = "08:00"
timezone = "America/Toronto"
allow_early = true

[next]
course = "strength-phase-2"
"""
)

PHASE_2 = (
    'title = "Strength, phase 2"\n'
    + COMMON
    + """
[schedule]
cadence_days = 3
send_time = "07:30"
timezone = "America/Toronto"
"""
)

PHASE_1_LESSONS = {
    "01-bridge.md": ("Phase 1, lesson 1: The glute bridge", "The glute bridge"),
    "02-squat.md": ("Phase 1, lesson 2: The box squat", "The box squat"),
    "03-row.md": ("Phase 1, lesson 3: The band row", "The band row"),
    "04-plank.md": ("Phase 1, lesson 4: The side plank", "The side plank"),
}
PHASE_2_LESSONS = {
    "01-split-squat.md": ("Phase 2, lesson 1: The split squat", "The split squat"),
    "02-deadlift.md": ("Phase 2, lesson 2: The kettlebell deadlift", "The kettlebell deadlift"),
}
COMPLETION = """+++
subject = "You finished {{ course.title }}, {{ subscriber.first_name }}"
preheader = "What comes next, and how to keep the habit"
title = "Well done"
+++
Hi {{ subscriber.first_name }},

You have had all {{ lesson.total }} lessons. Keep two short sessions a week and the strength
stays with you.
"""


def lesson_text(subject: str, title: str) -> str:
    return (
        f'+++\nsubject = "{subject}"\npreheader = "A short session for this week"\n'
        f'title = "{title}"\n+++\nHi {{{{ subscriber.first_name }}}},\n\n'
        "Three sets of eight, slow on the way down, with a long breath out at the top.\n"
    )


def write_strength_courses(
    courses_dir: Path, *, completion: bool = True, phase_1: str = PHASE_1
) -> None:
    """Both courses under `courses_dir` (beside whatever is there already)."""
    for slug, settings, lessons in (
        ("strength-phase-1", phase_1, PHASE_1_LESSONS),
        ("strength-phase-2", PHASE_2, PHASE_2_LESSONS),
    ):
        folder = courses_dir / slug
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "course.toml").write_text(settings)
        for name, (subject, title) in lessons.items():
            (folder / name).write_text(lesson_text(subject, title))
    if completion:
        (courses_dir / "strength-phase-1" / "completion.md").write_text(COMPLETION)


def run_passes(
    database: Database,
    settings: Settings,
    clock: FixedClock,
    end: datetime,
    *,
    step: timedelta = timedelta(minutes=30),
    on_outcome: Callable[[Sent], None] | None = None,
) -> None:
    """Dispatcher passes from the clock's time up to `end`, as a scheduler waking every `step`
    would run them, but only those that can find something due: from one pass the clock jumps to
    the next step at or after the next due instant (a pass at any step before it would find
    nothing). The clock ends on the last step at or before `end`, as a step-by-step loop leaves it."""
    backend = load_backend(settings.email_backend)
    start = at = clock.now()
    while at <= end:
        clock.set(at)
        Dispatcher(database, settings, backend, clock).run_pass(on_outcome=on_outcome)
        with database.read() as session:
            due = overview.status(session, at).next_due
        if due is None:
            break
        # The first step at or after `due`, and never the same step twice.
        at = max(start + step * -((start - due) // step), at + step)
    clock.set(start + step * ((end - start) // step))
