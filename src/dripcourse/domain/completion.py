"""A course's completion email (`completion.md` beside `course.toml`) as one frozen value.

It is written like a lesson (front matter, a Markdown body, the same layout and template
variables) but it is not one: it has no place in the course's order, `schedule.next_lesson` never
names it, and the lesson lists, the report and the tallies never count it. It is kept in the
course's settings JSON (`CourseSettings.completion`), so syncing it needs no table of its own, and
the renderer compiles it under `COMPLETION_KEY`, a name no lesson key can take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMPLETION_KEY = "_completion"
"""The renderer's name for the completion email: a lesson key starts with a letter or a digit
(`courses/files.KEY`), so a lesson called `completion` (09-completion.md) never collides with it."""
COMPLETION_FILE = "completion.md"


@dataclass(frozen=True, slots=True)
class CompletionEmail:
    """The closing email as read from `completion.md`: what the renderer needs of a lesson."""

    subject: str
    title: str
    body: str
    data: Mapping[str, Any] = field(default_factory=dict)
    """Front matter besides subject and title: preheader, topics, exercises, related..."""
    body_line: int = 1
    source_file: str = COMPLETION_FILE

    @property
    def key(self) -> str:
        return COMPLETION_KEY

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "title": self.title,
            "body": self.body,
            "data": dict(self.data),
            "body_line": self.body_line,
            "source_file": self.source_file,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompletionEmail:
        return cls(
            subject=data["subject"],
            title=data["title"],
            body=data["body"],
            data=dict(data.get("data") or {}),
            body_line=int(data.get("body_line", 1)),
            source_file=data.get("source_file", COMPLETION_FILE),
        )
