"""Reads and checks `course.toml` into a `CourseSettings` (domain/course_settings.py): its schema,
the defaults of what is not written, and every rule a value must keep, each mistake a `Problem` at
its line. The lesson files are `files.py`'s."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dripcourse.courses.toml_text import (
    Problem,
    check_items,
    check_keys,
    item_lines,
    key_lines,
    load_toml,
    read_text,
)
from dripcourse.domain.cohort import Cohort, parse_late_joiners
from dripcourse.domain.course_settings import DEFAULT_IMAGE_KB, CourseSettings
from dripcourse.domain.fields import parse_declaration
from dripcourse.domain.schedule import parse_send_days, parse_send_time
from dripcourse.domain.validation import has_control_characters, normalise_email
from dripcourse.errors import BadInput

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


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


ITEM_KEYS = {
    "exercises": {"name": True, "instructions": True, "dose": False},
    "related": {"title": True, "url": True, "summary": False, "thumbnail": False},
}
MAX_IMAGE_KB = 10_000
TABLES = (*COURSE_SCHEMA, "related", "fields")
"""The top-level names that are tables of course.toml, each read on its own."""


def read_settings(file: Path, problems: list[Problem]) -> CourseSettings | None:
    """The settings of course.toml, or None when it has a problem (each one reported)."""
    known = len(problems)
    text = read_text(file, problems) if file.is_file() else None
    raw = load_toml(file, text, 0, problems) if text is not None or not file.is_file() else None
    if raw is None or text is None:
        return None
    lines = key_lines(text)
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
        values = check_keys(
            table, keys, file, lines, section, problems, open_ended=not keys, tables=TABLES
        )
        if section == "":
            settings.update(values)
        else:
            settings[section] = values
    settings["related"] = check_items(
        raw.get("related", []),
        "related",
        ITEM_KEYS["related"],
        file,
        item_lines(text, "related"),
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
