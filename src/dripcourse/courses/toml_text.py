"""TOML read with the line of every mistake: a `Problem` says `file:line: message`, like a
compiler's, for course.toml (`settings_file.py`) and for a lesson's front matter (`files.py`)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

# tomllib says where in its own text: "(at line 3, column 9)", or "(at end of document)".
_TOML_WHERE = re.compile(r" \(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def read_text(file: Path, problems: list[Problem]) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = file.read_bytes()[: exc.start].count(b"\n") + 1
        problems.append(Problem(file, line, f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
    except OSError as exc:
        problems.append(Problem(file, 1, f"cannot read the file: {exc.strerror}"))
    return None


def load_toml(
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


def check_keys(
    table: dict[str, Any],
    keys: dict[str, tuple[type, bool]],
    file: Path,
    lines: dict[str, int],
    section: str,
    problems: list[Problem],
    open_ended: bool = False,
    tables: Collection[str] = (),
) -> dict[str, Any]:
    """The values of `table` of the `keys` it may have ((type, required) by name), each of the
    right type; a problem for each that is not, is unknown or is missing. `open_ended`: any key,
    all text. `tables`: keys of a top-level table that are sections read on their own."""
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
        elif section or key not in tables:
            problems.append(Problem(file, lines.get(key, 1), f"unknown setting {prefix + key!r}"))
    for key, (_kind, required) in keys.items():
        if required and key not in table:
            problems.append(Problem(file, lines.get(section, 1), f"missing {prefix}{key}"))
    return values


def check_items(
    items: Any,
    name: str,
    fields: dict[str, bool],
    file: Path,
    item_lines: list[int],
    problems: list[Problem],
) -> list[dict[str, Any]]:
    """Each [[name]] table checked against its `fields` (required or not, all text);
    `item_lines` has the line of each table's header."""
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


def key_lines(toml_text: str) -> dict[str, int]:
    """Line numbers of top-level keys and table headers, for pointing at mistakes."""
    found: dict[str, int] = {}
    for number, line in enumerate(toml_text.splitlines(), start=1):
        match = re.match(r"\s*\[{1,2}\s*([A-Za-z0-9_-]+)\s*\]{1,2}|\s*([A-Za-z0-9_-]+)\s*=", line)
        if match:
            found.setdefault(match.group(1) or match.group(2), number)
    return found


def item_lines(toml_text: str, name: str) -> list[int]:
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
