"""Reads a course folder (`course.toml` and one Markdown file per lesson) into validated data: the
course's `CourseSettings` (read by `settings_file.py`), its lessons, its layouts and its completion
email.

Nothing here touches the database: `catalog.py` checks and syncs what this module reads. Every mistake
is a `Problem` with the file and line it sits on, so authors see `01-feet.md:7: ...` like a compiler's
message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dripcourse.courses.settings_file import ITEM_KEYS, read_settings
from dripcourse.courses.settings_file import SLUG as SLUG
from dripcourse.courses.toml_text import (
    Problem,
    check_items,
    check_keys,
    item_lines,
    key_lines,
    load_toml,
    read_text,
)
from dripcourse.domain.audiences import check_audience
from dripcourse.domain.completion import COMPLETION_FILE, CompletionEmail
from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.validation import has_control_characters
from dripcourse.errors import BadInput

__all__ = ["SLUG", "CourseSource", "LessonSource", "Problem", "discover", "read_course"]

LESSON_NAME = re.compile(r"^\d.*\.md$")
"""A lesson's file name starts with its number (`01-feet.md`, `02b-race-week.md`); other Markdown
files of a course folder (a README.md, notes) are not lessons."""
LESSON_FILE = re.compile(r"^(?:\d+[-_ ])?(?P<stem>.+)\.md$")
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
FRONT_MATTER_FENCE = "+++"


@dataclass(frozen=True, slots=True)
class LessonSource:
    key: str
    file: Path
    position: int
    subject: str
    title: str
    data: dict[str, Any]
    body: str
    body_line: int
    """1-based line of the file where the body starts."""
    front_matter_lines: dict[str, int]
    """The line of each top-level front-matter key, to point errors at it."""
    content_hash: str

    @property
    def source_file(self) -> str:
        return self.file.name


@dataclass(slots=True)
class CourseSource:
    slug: str
    path: Path
    settings: CourseSettings | None
    """None when course.toml has a problem: a broken course is refused whole."""
    lessons: list[LessonSource]
    layout_html: str | None = None
    layout_text: str | None = None
    problems: list[Problem] = field(default_factory=list)
    misnamed: list[Path] = field(default_factory=list)
    """Markdown files that open with front matter, like a lesson, but are not named like one."""
    completion: LessonSource | None = None
    """`completion.md` as read (for its lines); the settings carry it as `CompletionEmail`."""

    @property
    def checked_settings(self) -> CourseSettings:
        """The settings of a course whose course.toml has no problem; BadInput for one that has."""
        if self.settings is None:
            raise BadInput(f"course {self.slug!r}: course.toml has problems (`courses check`)")
        return self.settings


LESSON_KEYS: dict[str, tuple[type, bool]] = {
    "subject": (str, True),
    "title": (str, True),
    "key": (str, False),
    "preheader": (str, False),
    "topics": (list, False),
    "equipment": (list, False),
    "teaser": (str, False),
    "exercises": (list, False),
    "related": (list, False),
    "audience": (dict, False),
}


def discover(courses_dir: Path) -> list[Path]:
    """The course folders (those with a course.toml) under `courses_dir`, by slug."""
    if not courses_dir.is_dir():
        return []
    return sorted(p.parent for p in courses_dir.glob("*/course.toml"))


def read_course(path: Path) -> CourseSource:
    """Everything in one course folder; problems are collected, not raised."""
    slug = path.name
    source = CourseSource(slug=slug, path=path, settings=None, lessons=[])
    if not SLUG.match(slug):
        source.problems.append(
            Problem(
                path,
                1,
                f"course folder name {slug!r} is not a valid "
                "slug (lower-case letters, digits and '-')",
            )
        )
    source.settings = read_settings(path / "course.toml", source.problems)
    for name, attr in (("layout.html", "layout_html"), ("layout.txt", "layout_text")):
        if (path / name).is_file():
            setattr(source, attr, read_text(path / name, source.problems))
    markdown = sorted(p for p in path.glob("*.md") if p.is_file())
    files = [p for p in markdown if LESSON_NAME.match(p.name)]
    source.misnamed = [
        p
        for p in markdown
        if p not in files and p.name != COMPLETION_FILE and _opens_with_front_matter(p)
    ]
    if not files:
        source.problems.append(
            Problem(
                path / "course.toml",
                1,
                "the course has no lessons (no NN-name.md files beside course.toml)",
            )
        )
    seen: dict[str, Path] = {}
    for position, file in enumerate(files, start=1):
        lesson = _read_lesson(file, position, source.problems)
        if lesson is None:
            continue
        if lesson.key in seen:
            source.problems.append(
                Problem(
                    file, 1, f"lesson key {lesson.key!r} is also used by {seen[lesson.key].name}"
                )
            )
            continue
        seen[lesson.key] = file
        source.lessons.append(lesson)
    _read_completion(source)
    if source.settings is not None:
        _check_audiences(source)
    return source


def _read_completion(source: CourseSource) -> None:
    """`completion.md`, read and checked like a lesson (file:line problems), kept with the
    settings: it is not a lesson and takes no place in the course's order."""
    file = source.path / COMPLETION_FILE
    if not file.is_file():
        return
    read = _read_lesson(file, 0, source.problems)
    if read is None:
        return
    source.completion = read
    if source.settings is not None:
        email = CompletionEmail(
            subject=read.subject,
            title=read.title,
            body=read.body,
            data=read.data,
            body_line=read.body_line,
            source_file=COMPLETION_FILE,
        )
        source.settings = replace(source.settings, completion=email)


def _check_audiences(source: CourseSource) -> None:
    """Each lesson's `audience` names declared choice fields and their choices."""
    declared = source.checked_settings.fields
    for lesson in source.lessons:
        if "audience" in lesson.data:
            line = lesson.front_matter_lines.get("audience", 1)
            for message in check_audience(lesson.data["audience"], declared):
                source.problems.append(Problem(lesson.file, line, message))


def _opens_with_front_matter(file: Path) -> bool:
    try:
        with file.open("rb") as opened:
            return opened.readline().strip() == FRONT_MATTER_FENCE.encode()
    except OSError:
        return False


def _read_lesson(file: Path, position: int, problems: list[Problem]) -> LessonSource | None:
    text = read_text(file, problems)
    if text is None:
        return None
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != FRONT_MATTER_FENCE:
        problems.append(Problem(file, 1, "a lesson starts with front matter between '+++' lines"))
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER_FENCE)
    except StopIteration:
        problems.append(Problem(file, 1, "front matter is not closed by a '+++' line"))
        return None
    front_text = "".join(lines[1:end])
    raw = load_toml(file, front_text, 1, problems)
    if raw is None:
        return None
    lines_of = {k: v + 1 for k, v in key_lines(front_text).items()}
    data = check_keys(raw, LESSON_KEYS, file, lines_of, "", problems)
    for name in ("exercises", "related"):
        if name in data:
            headers = [line + 1 for line in item_lines(front_text, name)]
            data[name] = check_items(data[name], name, ITEM_KEYS[name], file, headers, problems)
    for name in ("topics", "equipment"):
        if name in data and not all(isinstance(item, str) for item in data[name]):
            problems.append(Problem(file, lines_of.get(name, 1), f"{name} must be a list of text"))
    if "subject" not in data or "title" not in data:
        return None
    # A subject template may span lines (its whitespace becomes one space); nothing else is allowed.
    if isinstance(data["subject"], str) and has_control_characters(
        " ".join(data["subject"].split())
    ):
        problems.append(
            Problem(file, lines_of.get("subject", 1), "subject may not contain control characters")
        )
    stem = LESSON_FILE.match(file.name)
    key = data.pop("key", None) or (stem.group("stem") if stem else file.stem).lower()
    if not KEY.match(key):
        problems.append(
            Problem(
                file,
                lines_of.get("key", 1),
                f"lesson key {key!r} must be lower-case letters, digits, '-' or '_'",
            )
        )
        return None
    body = "".join(lines[end + 1 :])
    return LessonSource(
        key=key,
        file=file,
        position=position,
        subject=data.pop("subject"),
        title=data.pop("title"),
        data=data,
        body=body,
        body_line=end + 2,
        front_matter_lines=lines_of,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
