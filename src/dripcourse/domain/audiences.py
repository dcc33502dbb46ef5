"""Lessons for part of a course's audience (front matter `audience = { level = ["returning"] }`).

A lesson with an audience is for the people whose value of each named field (the default when they
gave none) is one of the values listed. Someone outside it skips the lesson without losing a week:
when it would be owed, the next lesson that is for them goes at that time instead (`next_lesson_for`).
The rules are pure: the ledger, the timeline, the calendar and the report ask them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dripcourse.domain.fields import FieldSpec, complete
from dripcourse.domain.schedule import next_lesson

Audience = Mapping[str, Sequence[str]]
"""Field name -> the values a lesson is for; empty: the lesson is for everyone."""


def check_audience(raw: Any, declared: Sequence[FieldSpec]) -> list[str]:
    """What is wrong with a lesson's `audience` given the course's fields (empty if nothing)."""
    if not isinstance(raw, dict):
        return ['audience must be a table, e.g. audience = { level = ["returning"] }']
    by_name = {spec.name: spec for spec in declared}
    problems: list[str] = []
    for name, values in raw.items():
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(by_name) or "none declared in course.toml [fields]"
            problems.append(f"audience names an unknown field {name!r} (fields: {known})")
        elif spec.is_text:
            problems.append(f"audience.{name}: a text field cannot choose an audience")
        elif not isinstance(values, list) or not values:
            problems.append(f"audience.{name} must be a list of at least one of its choices")
        else:
            for value in values:
                if value not in spec.choices:
                    problems.append(
                        f"audience.{name}: {value!r} is not one of {', '.join(spec.choices)}"
                    )
    return problems


def lesson_is_for(
    audience: Audience | None, fields: Mapping[str, Any], declared: Sequence[FieldSpec]
) -> bool:
    """Whether a lesson with this audience is for a person with these stored field values."""
    if not audience:
        return True
    values = complete(fields, declared)
    return all(values.get(name, "") in allowed for name, allowed in audience.items())


@dataclass(frozen=True, slots=True)
class Audiences:
    """The audience of each lesson of a course that has one, by key: "is this lesson for this
    person", asked alike by the ledger, the catalog (reopening a finished course) and the plans."""

    by_key: Mapping[str, Audience]

    @classmethod
    def of(cls, lessons: Iterable[tuple[str, Mapping[str, Any] | None]]) -> Audiences:
        """From each lesson's key and data (its front matter, as stored)."""
        return cls(
            {key: data["audience"] for key, data in lessons if data and data.get("audience")}
        )

    def is_for(
        self, fields: Mapping[str, Any] | None, declared: Sequence[FieldSpec]
    ) -> Callable[[str], bool]:
        """Whether lesson `key` is for a person with these stored values."""
        values = fields or {}
        return lambda key: lesson_is_for(self.by_key.get(key), values, declared)


def describe(audience: Audience) -> str:
    """`for level returning`, `for level beginner or returning and club A`."""
    return "for " + " and ".join(
        f"{name} {' or '.join(values)}" for name, values in audience.items()
    )


def next_lesson_for(
    lesson_keys: Sequence[str], history: Sequence[str], is_for: Callable[[str], bool]
) -> tuple[str | None, list[str]]:
    """The next lesson owed to a person (`schedule.next_lesson`, the course's order and place),
    passing over those not for them; and the keys passed over, in order.

    The place is taken in the whole course, so a lesson someone skipped is never sent later
    because their fields changed, and one they are now in is owed from where they are."""
    had = list(history)
    skipped: list[str] = []
    while (key := next_lesson(lesson_keys, had)) is not None and not is_for(key):
        skipped.append(key)
        had.append(key)
    return key, skipped


def remaining_for(
    lesson_keys: Sequence[str], history: Sequence[str], is_for: Callable[[str], bool]
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The lessons still to come for a person, numbered as in the course, in sending order; and
    those they will skip, numbered likewise (`schedule.remaining_lessons` with an audience)."""
    numbers = {key: number for number, key in enumerate(lesson_keys, 1)}
    remaining: list[tuple[int, str]] = []
    skipped: list[tuple[int, str]] = []
    had = list(history)
    while True:
        key, passed = next_lesson_for(lesson_keys, had, is_for)
        skipped.extend((numbers[k], k) for k in passed)
        had.extend(passed)
        if key is None:
            return remaining, skipped
        remaining.append((numbers[key], key))
        had.append(key)
