"""Reads a course folder (`course.toml` and one Markdown file per lesson) into validated data: the
course's `CourseSettings` (domain/course_settings.py), its lessons and layouts.

Nothing here touches the database: `catalog.py` checks and syncs what this module reads. Every mistake
is a `Problem` with the file and line it sits on, so authors see `01-feet.md:7: ...` like a compiler's
message.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dripcourse.domain.audiences import check_audience
from dripcourse.domain.cohort import Cohort, parse_late_joiners
from dripcourse.domain.completion import COMPLETION_FILE, CompletionEmail
from dripcourse.domain.course_settings import DEFAULT_IMAGE_KB, CourseSettings
from dripcourse.domain.fields import parse_declaration
from dripcourse.domain.schedule import parse_send_days, parse_send_time
from dripcourse.domain.validation import has_control_characters, normalise_email
from dripcourse.errors import BadInput

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
LESSON_NAME = re.compile(r"^\d.*\.md$")
"""A lesson's file name starts with its number (`01-feet.md`, `02b-race-week.md`); other Markdown
files of a course folder (a README.md, notes) are not lessons."""
LESSON_FILE = re.compile(r"^(?:\d+[-_ ])?(?P<stem>.+)\.md$")
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
# tomllib says where in its own text: "(at line 3, column 9)", or "(at end of document)".
_TOML_WHERE = re.compile(r" \(at line (\d+), column (\d+)\)$")
FRONT_MATTER_FENCE = "+++"


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


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


# The course.toml schema: section -> key -> (type, required). Top-level keys use the section "".
_STR, _INT, _LIST = str, int, list
COURSE_SCHEMA: dict[str, dict[str, tuple[type, bool]]] = {
    "": {
        "title": (_STR, True),
        "description": (_STR, False),
        "brand": (_STR, True),
        "language": (_STR, False),
        "double_opt_in": (bool, False),
    },
    "sender": {
        "name": (_STR, True),
        "email": (_STR, True),
        "reply_to": (_STR, False),
        "unsubscribe_email": (_STR, False),
        "bounce_email": (_STR, False),
    },
    "schedule": {
        "cadence_days": (_INT, False),
        "send_time": (_STR, False),
        "send_days": (_LIST, False),
        "timezone": (_STR, False),
        "allow_early": (bool, False),
        "starts_on": (date, False),
        "late_joiners": (_STR, False),
    },
    "contact": {"email": (_STR, False), "phone": (_STR, False)},
    "footer": {"postal_address": (_STR, True)},
    "call_to_action": {
        "heading": (_STR, True),
        "text": (_STR, False),
        "label": (_STR, True),
        "url": (_STR, True),
    },
    "links": {},
    "theme": {"accent": (_STR, False)},
    "tracking": {"clicks": (bool, False)},
    "next": {"course": (_STR, False)},
    "images": {"max_kb": (_INT, False)},
}
LESSON_KEYS: dict[str, tuple[type, bool]] = {
    "subject": (_STR, True),
    "title": (_STR, True),
    "key": (_STR, False),
    "preheader": (_STR, False),
    "topics": (_LIST, False),
    "equipment": (_LIST, False),
    "teaser": (_STR, False),
    "exercises": (_LIST, False),
    "related": (_LIST, False),
    "audience": (dict, False),
}
ITEM_KEYS = {
    "exercises": {"name": True, "instructions": True, "dose": False},
    "related": {"title": True, "url": True, "summary": False, "thumbnail": False},
}
MAX_IMAGE_KB = 10_000


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
    source.settings = _read_settings(path / "course.toml", source.problems)
    for name, attr in (("layout.html", "layout_html"), ("layout.txt", "layout_text")):
        if (path / name).is_file():
            setattr(source, attr, _read_text(path / name, source.problems))
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


def _read_settings(file: Path, problems: list[Problem]) -> CourseSettings | None:
    """The settings of course.toml, or None when it has a problem (each one reported)."""
    known = len(problems)
    text = _read_text(file, problems) if file.is_file() else None
    raw = _load_toml(file, text, 0, problems) if text is not None or not file.is_file() else None
    if raw is None or text is None:
        return None
    lines = _key_lines(text)
    raw, logo = _brand_of(raw, file, lines, problems)
    settings: dict[str, Any] = {"logo": logo}
    for section, keys in COURSE_SCHEMA.items():
        table = raw if section == "" else raw.get(section)
        if table is None:
            if section in ("sender", "footer"):
                problems.append(Problem(file, 1, f"missing section [{section}]"))
            continue
        if not isinstance(table, dict):
            problems.append(Problem(file, lines.get(section, 1), f"{section} must be a table"))
            continue
        values = _check_keys(table, keys, file, lines, section, problems, open_ended=not keys)
        if section == "":
            settings.update(values)
        else:
            settings[section] = values
    settings["related"] = _check_items(
        raw.get("related", []),
        "related",
        file,
        _item_lines(text, "related"),
        problems,
    )
    settings["fields"] = _read_fields(raw.get("fields", {}), file, lines, problems)
    settings = _normalise_settings(settings, file, lines, problems)
    # Checked above, every default filled in: the shape `CourseSettings.from_json` reads.
    return CourseSettings.from_json(settings) if len(problems) == known else None


def _brand_of(
    raw: dict[str, Any], file: Path, lines: dict[str, int], problems: list[Problem]
) -> tuple[dict[str, Any], str | None]:
    """`brand = "Name"`, or the table `[brand]` with `name` (required) and `logo` (an image of the
    course folder): `raw` with `brand` as the name, and the logo or None."""
    brand = raw.get("brand")
    if not isinstance(brand, dict):
        return raw, None
    line = lines.get("brand", 1)
    for key in sorted(set(brand) - {"name", "logo"}):
        problems.append(Problem(file, line, f"unknown setting 'brand.{key}'"))
    for key in ("name", "logo"):
        if key in brand and not isinstance(brand[key], str):
            problems.append(Problem(file, line, f"brand.{key} must be text"))
    if "name" not in brand:
        problems.append(Problem(file, line, "missing brand.name (who the course is from)"))
    name, logo = brand.get("name"), brand.get("logo")
    # A wrong or missing name is said above; "" keeps it from being said twice.
    flat = {key: value for key, value in raw.items() if key != "brand"}
    flat["brand"] = name if isinstance(name, str) else ""
    return flat, logo if isinstance(logo, str) else None


def _read_fields(
    table: Any, file: Path, lines: dict[str, int], problems: list[Problem]
) -> list[dict[str, Any]]:
    """`[fields]`: the custom fields (domain/fields.py), in the JSON shape of the settings."""
    if not isinstance(table, dict):
        problems.append(Problem(file, lines.get("fields", 1), "fields must be a table"))
        return []
    specs, messages = parse_declaration(table)
    for message in messages:
        name = message.split(":", 1)[0].removeprefix("fields.")
        problems.append(Problem(file, lines.get(name, lines.get("fields", 1)), message))
    return [spec.to_json() for spec in specs]


def _normalise_settings(
    settings: dict[str, Any], file: Path, lines: dict[str, int], problems: list[Problem]
) -> dict[str, Any]:
    schedule = settings.get("schedule", {})
    normal: dict[str, Any] = {
        "cadence_days": 7,
        "send_time": "08:00",
        "send_days": list(range(7)),
        "timezone": "UTC",
    }
    checks: dict[str, Callable[[Any], Any]] = {
        "cadence_days": _check_cadence,
        "send_time": lambda value: parse_send_time(value).strftime("%H:%M"),
        "send_days": lambda value: sorted(parse_send_days(value)),
        "timezone": _check_zone,
    }
    for key, check in checks.items():
        if key not in schedule:
            continue
        try:
            normal[key] = check(schedule[key])
        except (ValueError, TypeError) as exc:
            line = lines.get(key, lines.get("schedule", 1))
            problems.append(Problem(file, line, f"schedule.{key}: {exc}"))
    normal.update(_cohort_settings(schedule, file, lines, problems))
    settings["schedule"] = normal
    settings.setdefault("language", "en")
    settings.setdefault("double_opt_in", True)
    settings.setdefault("description", None)
    sender = settings.setdefault("sender", {})
    sender.setdefault("reply_to", None)
    sender.setdefault("unsubscribe_email", sender.get("email"))
    for key in ("email", "reply_to", "unsubscribe_email", "bounce_email"):
        if not sender.get(key):
            continue
        try:
            # The same rule as a subscriber's address: what goes in a header must be sendable.
            sender[key] = normalise_email(str(sender[key]))
        except BadInput as exc:
            problems.append(
                Problem(
                    file,
                    lines.get("sender", 1),
                    f"sender.{key} is not an email address: {sender[key]!r} ({exc})",
                )
            )
    # Both go out in headers (From, List-Id), where a line break could never be written.
    for label, section, value in (
        ("title", "title", settings.get("title")),
        ("sender.name", "sender", sender.get("name")),
    ):
        if isinstance(value, str) and has_control_characters(value):
            problems.append(
                Problem(
                    file,
                    lines.get(section, 1),
                    f"{label} must be one line, without control characters",
                )
            )
    contact = settings.setdefault("contact", {})
    contact.setdefault("email", None)
    contact.setdefault("phone", None)
    settings.setdefault("footer", {})
    settings.setdefault("call_to_action", None)
    settings.setdefault("links", {})
    settings["theme"] = {"accent": settings.get("theme", {}).get("accent", "#0f766e")}
    # Off unless asked for: who reads what is the subscriber's business (see clicks.py).
    settings["tracking"] = {"clicks": settings.get("tracking", {}).get("clicks", False)}
    settings["allow_early"] = bool(schedule.get("allow_early", False))
    if settings["allow_early"] and "starts_on" in schedule:
        # A cohort moves together on its dates; a lesson asked for early would leave the person
        # a week ahead of everyone else, and the cohort's next date would hold them anyway.
        problems.append(
            Problem(
                file,
                lines.get("allow_early", lines.get("schedule", 1)),
                "schedule.allow_early cannot be used in a cohort course (starts_on): "
                "everyone gets each lesson on the cohort's date",
            )
        )
    _check_next(settings, file, lines, problems)
    max_kb = settings.get("images", {}).get("max_kb", DEFAULT_IMAGE_KB)
    settings["images"] = {"max_kb": max_kb}
    if not 1 <= max_kb <= MAX_IMAGE_KB:
        problems.append(
            Problem(
                file, lines.get("images", 1), f"images.max_kb must be 1 to {MAX_IMAGE_KB:,} (KB)"
            )
        )
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", settings["theme"]["accent"]):
        problems.append(
            Problem(file, lines.get("theme", 1), "theme.accent must be a colour like #0f766e")
        )
    return settings


def _check_next(
    settings: dict[str, Any], file: Path, lines: dict[str, int], problems: list[Problem]
) -> None:
    """`[next] course` names a course by its slug; whether that course exists is a warning
    (`checks.py`, `catalog.sync_course`), since it may be synced after this one."""
    slug = settings.get("next", {}).get("course")
    if slug is not None and not SLUG.match(slug):
        problems.append(
            Problem(file, lines.get("next", 1), f"next.course {slug!r} is not a course slug")
        )


def _cohort_settings(
    schedule: dict[str, Any], file: Path, lines: dict[str, int], problems: list[Problem]
) -> dict[str, Any]:
    """`starts_on` and `late_joiners` (a cohort course, domain/cohort.py), checked: a date without
    a time, and a mode that only means something with it."""
    found: dict[str, Any] = {}
    starts_on = schedule.get("starts_on")
    if isinstance(starts_on, datetime):  # a datetime is a date too: its time would be dropped
        problems.append(
            Problem(
                file,
                lines.get("starts_on", 1),
                f"schedule.starts_on must be a date without a time (starts_on = "
                f"{starts_on.date().isoformat()}): lessons go at send_time in each person's zone",
            )
        )
    elif starts_on is not None:
        try:
            found["starts_on"] = Cohort(starts_on).starts_on.isoformat()
        except ValueError as exc:
            problems.append(Problem(file, lines.get("starts_on", 1), f"schedule.{exc}"))
    if "late_joiners" in schedule:
        line = lines.get("late_joiners", 1)
        try:
            found["late_joiners"] = parse_late_joiners(schedule["late_joiners"]).value
        except ValueError as exc:
            problems.append(Problem(file, line, f"schedule.late_joiners: {exc}"))
        # Not written at all (one of the wrong type has its own problem already).
        if "starts_on" not in schedule and "starts_on" not in lines:
            problems.append(
                Problem(
                    file,
                    line,
                    "schedule.late_joiners only applies to a cohort course: "
                    "add starts_on (a date, e.g. starts_on = 2027-01-11) or remove it",
                )
            )
    return found


def _check_cadence(value: int) -> int:
    if value < 1:
        raise ValueError("must be at least 1 (days between lessons)")
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as 'America/Toronto')"
        ) from None
    return value


def _read_lesson(file: Path, position: int, problems: list[Problem]) -> LessonSource | None:
    text = _read_text(file, problems)
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
    raw = _load_toml(file, front_text, 1, problems)
    if raw is None:
        return None
    key_lines = {k: v + 1 for k, v in _key_lines(front_text).items()}
    data = _check_keys(raw, LESSON_KEYS, file, key_lines, "", problems)
    for name in ("exercises", "related"):
        if name in data:
            item_lines = [line + 1 for line in _item_lines(front_text, name)]
            data[name] = _check_items(data[name], name, file, item_lines, problems)
    for name in ("topics", "equipment"):
        if name in data and not all(isinstance(item, str) for item in data[name]):
            problems.append(Problem(file, key_lines.get(name, 1), f"{name} must be a list of text"))
    if "subject" not in data or "title" not in data:
        return None
    # A subject template may span lines (its whitespace becomes one space); nothing else is allowed.
    if isinstance(data["subject"], str) and has_control_characters(
        " ".join(data["subject"].split())
    ):
        problems.append(
            Problem(file, key_lines.get("subject", 1), "subject may not contain control characters")
        )
    stem = LESSON_FILE.match(file.name)
    key = data.pop("key", None) or (stem.group("stem") if stem else file.stem).lower()
    if not KEY.match(key):
        problems.append(
            Problem(
                file,
                key_lines.get("key", 1),
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
        front_matter_lines=key_lines,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def _read_text(file: Path, problems: list[Problem]) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = file.read_bytes()[: exc.start].count(b"\n") + 1
        problems.append(Problem(file, line, f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
    except OSError as exc:
        problems.append(Problem(file, 1, f"cannot read the file: {exc.strerror}"))
    return None


def _load_toml(
    file: Path, text: str | None, line_offset: int, problems: list[Problem]
) -> dict[str, Any] | None:
    if text is None:
        problems.append(Problem(file, 1, "file not found"))
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_WHERE.search(message)
        if found:
            # The line of the front matter is not the line of the file: one number, the file's.
            line = int(found.group(1)) + line_offset
            message = f"{message[: found.start()]} (column {found.group(2)})"
        else:
            line = line_offset + max(1, len(text.splitlines()))
        problems.append(Problem(file, line, f"invalid TOML: {message}"))
        return None


def _check_keys(
    table: dict[str, Any],
    keys: dict[str, tuple[type, bool]],
    file: Path,
    lines: dict[str, int],
    section: str,
    problems: list[Problem],
    open_ended: bool = False,
) -> dict[str, Any]:
    prefix = f"{section}." if section else ""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if open_ended:
            if not isinstance(value, str):
                problems.append(Problem(file, lines.get(key, 1), f"{prefix}{key} must be text"))
                continue
            values[key] = value
        elif key in keys:
            kind = keys[key][0]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                problems.append(
                    Problem(file, lines.get(key, 1), f"{prefix}{key} must be {_kind_name(kind)}")
                )
                continue
            values[key] = value
        elif section or (key not in COURSE_SCHEMA and key not in ("related", "fields")):
            problems.append(Problem(file, lines.get(key, 1), f"unknown setting {prefix + key!r}"))
    for key, (_kind, required) in keys.items():
        if required and key not in table:
            problems.append(Problem(file, lines.get(section, 1), f"missing {prefix}{key}"))
    return values


def _check_items(
    items: Any, name: str, file: Path, item_lines: list[int], problems: list[Problem]
) -> list[dict[str, Any]]:
    """Each [[name]] table checked; `item_lines` has the line of each table's header."""
    fields = ITEM_KEYS[name]
    line = item_lines[0] if item_lines else 1
    if not isinstance(items, list):
        problems.append(Problem(file, line, f"{name} must be a list of tables ([[{name}]])"))
        return []
    checked = []
    for number, item in enumerate(items, start=1):
        line = item_lines[number - 1] if number <= len(item_lines) else line
        if not isinstance(item, dict):
            problems.append(Problem(file, line, f"{name} #{number} must be a table"))
            continue
        unknown = sorted(set(item) - set(fields))
        missing = [key for key, required in fields.items() if required and key not in item]
        wrong = [key for key in item if key in fields and not isinstance(item[key], str)]
        for message in (
            [f"unknown key {k!r}" for k in unknown]
            + [f"missing {k}" for k in missing]
            + [f"{k} must be text" for k in wrong]
        ):
            problems.append(Problem(file, line, f"{name} #{number}: {message}"))
        if not (unknown or missing or wrong):
            checked.append({key: item.get(key) for key in fields})
    return checked


def _key_lines(toml_text: str) -> dict[str, int]:
    """Line numbers of top-level keys and table headers, for pointing at mistakes."""
    found: dict[str, int] = {}
    for number, line in enumerate(toml_text.splitlines(), start=1):
        match = re.match(r"\s*\[{1,2}\s*([A-Za-z0-9_-]+)\s*\]{1,2}|\s*([A-Za-z0-9_-]+)\s*=", line)
        if match:
            found.setdefault(match.group(1) or match.group(2), number)
    return found


def _item_lines(toml_text: str, name: str) -> list[int]:
    """The line of each `[[name]]` header, in order."""
    header = re.compile(rf"\s*\[\[\s*{re.escape(name)}\s*\]\]")
    return [n for n, line in enumerate(toml_text.splitlines(), start=1) if header.match(line)]


def _kind_name(kind: type) -> str:
    return {
        str: "text",
        int: "a whole number",
        list: "a list",
        bool: "true or false",
        date: "a date like 2027-01-11 (not in quotes)",
        dict: "a table",
    }[kind]
