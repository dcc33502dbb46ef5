"""The runners course with custom fields and a lesson for an audience: the fixture course of the
custom-field tests (a copy of the shipped course, changed in the tests' own folder).

- `[fields]`: `level` (beginner or returning, default beginner) and `club` (free text);
- lesson 2 (ankles) prints both, in the subject and the body;
- lesson 4 (knees) is for `level = ["returning"]` only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = """
[fields]
level = { choices = ["beginner", "returning"], default = "beginner", label = "Your running" }
club = { text = true, label = "Running club" }
"""
PRINTS = (
    "This week is written with {{ subscriber.fields.level }} runners in mind. "
    "Say hello to everyone at {{ subscriber.fields.club }}.\n\n"
)


def field_course(target: Path) -> Path:
    """A copy of the shipped courses under `target` with the changes above; returns `target`."""
    shutil.copytree(ROOT / "emails", target)
    course = target / "runners"
    with (course / "course.toml").open("a", encoding="utf-8") as toml:
        toml.write(FIELDS)
    set_front_matter(course / "04-knees.md", 'audience = { level = ["returning"] }')
    ankles = course / "02-ankles.md"
    text = ankles.read_text(encoding="utf-8")
    text = text.replace(
        'subject = "Lesson 2: Ankles that bend and balance"',
        'subject = "Lesson 2: Ankles for {{ subscriber.fields.level }} runners"',
    )
    end = text.index("+++", 3) + len("+++\n")
    ankles.write_text(text[:end] + "\n" + PRINTS + text[end:], encoding="utf-8")
    return target


def set_front_matter(lesson: Path, line: str) -> None:
    """Add `line` at the top of a lesson's front matter."""
    text = lesson.read_text(encoding="utf-8")
    lesson.write_text(text.replace("+++\n", f"+++\n{line}\n", 1), encoding="utf-8")
