"""Lessons for an audience, as the timeline, the calendar and the report show them.

The rule of who a lesson is for is `domain/audiences.py`; this module reads the audiences of a
course's lessons (their front matter `audience`, from the files or from the database) and says which
lessons a person skips, and how many of a course's people each lesson is for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.domain.audiences import Audiences, describe
from dripcourse.store.models import Course, Enrollment, EnrollmentStatus


class _HasData(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Skip:
    """A lesson someone skips: it is for an audience they are outside."""

    number: int
    """The lesson's place in the course."""
    key: str
    audience: str
    """Whom it is for: `for level returning`."""

    @property
    def note(self) -> str:
        return f"skipped: {self.audience}"


def audience_of(lessons: Iterable[_HasData]) -> Audiences:
    return Audiences.of((lesson.key, lesson.data) for lesson in lessons)


def skips(
    keys: Sequence[str], history: Sequence[str], is_for: Callable[[str], bool], audiences: Audiences
) -> list[Skip]:
    """The lessons of the course (`keys`, in order) a person has not had and is outside of: those
    they passed over already and those they will, by their values today."""
    had = set(history)
    return [
        Skip(number, key, describe(audiences.by_key[key]))
        for number, key in enumerate(keys, 1)
        if key not in had and not is_for(key)
    ]


def reach(session: Session, course: Course) -> dict[str, tuple[int, int]]:
    """For each current lesson with an audience: how many of the course's people (enrolments not
    ended) it is for, and how many skip it, by their values today."""
    audiences = audience_of(course.current_lessons)
    if not audiences.by_key:
        return {}
    counts = {key: [0, 0] for key in audiences.by_key}
    declared = course.settings.fields
    rows = session.scalars(
        select(Enrollment.fields).where(
            Enrollment.course_id == course.id,
            Enrollment.status.not_in([EnrollmentStatus.UNSUBSCRIBED]),
        )
    )
    for fields in rows:
        is_for = audiences.is_for(fields or {}, declared)
        for key, count in counts.items():
            count[0 if is_for(key) else 1] += 1
    return {key: (count[0], count[1]) for key, count in counts.items()}
