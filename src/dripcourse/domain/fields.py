"""A course's custom fields (`[fields]` in course.toml): what may be declared, and what a person's
values may be.

A field is either a choice among a fixed list (`level = { choices = [...], default = "..." }`) or
one line of free text (`club = { text = true }`). Values come from strangers (the sign-up form,
the API, a CSV file, the command line): `check_values` is the one place they are checked, and it
returns what is stored in `enrollments.fields`. Only the values a person gave are stored; the
defaults are applied when the values are read (`complete`), so that a default changed in
course.toml applies to everyone who gave none. Nothing here does I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dripcourse.domain.validation import has_control_characters
from dripcourse.errors import BadInput

MAX_TEXT = 200
FIELD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESERVED = frozenset(
    # A person's own columns, and the other columns of a subscriber export: a field named like
    # one would make the CSV ambiguous (`subscribers import` reads an export back).
    {"email", "name", "timezone", "course", "status", "enrolled_at", "confirmed_at", "fields"}
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One declared field."""

    name: str
    label: str
    choices: tuple[str, ...] = ()
    """The values allowed, in the order the form offers them; empty for a text field."""
    default: str = ""
    """What a person who gave no value has ("" for none)."""
    required: bool = False
    """Whether a sign-up must give a value (a field with a default never needs one)."""

    @property
    def is_text(self) -> bool:
        return not self.choices

    def to_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"name": self.name, "label": self.label}
        if self.choices:
            shape["choices"] = list(self.choices)
        else:
            shape["text"] = True
        return shape | {"default": self.default, "required": self.required}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldSpec:
        return cls(
            name=data["name"],
            label=data.get("label") or default_label(data["name"]),
            choices=tuple(data.get("choices") or ()),
            default=data.get("default", ""),
            required=bool(data.get("required", False)),
        )


def default_label(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").capitalize()


def parse_declaration(table: Mapping[str, Any]) -> tuple[tuple[FieldSpec, ...], list[str]]:
    """The fields of course.toml's `[fields]` table, and the problems found (one line each,
    prefixed with `fields.<name>`). A field with a problem is left out."""
    specs: list[FieldSpec] = []
    problems: list[str] = []
    for name, raw in table.items():
        try:
            specs.append(_parse_one(name, raw))
        except ValueError as exc:
            problems.append(f"fields.{name}: {exc}")
    return tuple(specs), problems


def _parse_one(name: str, raw: Any) -> FieldSpec:
    if not FIELD_NAME.match(name):
        raise ValueError("a field name is lower-case letters, digits, '-' or '_'")
    if name in RESERVED:
        raise ValueError(f"{name!r} is a subscriber's own column; choose another name")
    if not isinstance(raw, dict):
        raise ValueError('must be a table, e.g. { choices = ["a", "b"] } or { text = true }')
    unknown = sorted(set(raw) - {"choices", "text", "default", "label", "required"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (choices, text, default, label, required)")
    label = raw.get("label", default_label(name))
    default = raw.get("default", "")
    required = raw.get("required", False)
    if not isinstance(label, str) or not label.strip() or has_control_characters(label):
        raise ValueError("label must be one line of text")
    if not isinstance(required, bool):
        raise ValueError("required must be true or false")
    if not isinstance(default, str):
        raise ValueError("default must be text")
    choices = raw.get("choices")
    if choices is None:
        if raw.get("text") is not True:
            raise ValueError("give `choices = [...]` or `text = true`")
        if default:
            default = clean_text(default, name)
        return FieldSpec(name, label.strip(), (), default, required and not default)
    if "text" in raw:
        raise ValueError("a field has choices or is text, not both")
    if not isinstance(choices, list) or not choices:
        raise ValueError("choices must be a list of at least one value")
    if not all(isinstance(c, str) and c and _one_clean_line(c) for c in choices):
        raise ValueError("each choice must be non-empty text on one line")
    if len(set(choices)) != len(choices):
        raise ValueError("a choice is listed twice")
    if default and default not in choices:
        raise ValueError(f"default {default!r} is not one of the choices")
    return FieldSpec(name, label.strip(), tuple(choices), default, required and not default)


def _one_clean_line(text: str) -> bool:
    # A choice is compared as typed (`check_values`), so it must be what a value is cleaned to.
    if has_control_characters(text) or len(text) > MAX_TEXT:
        return False
    return text == " ".join(unicodedata.normalize("NFC", text).split())


def clean_text(value: str, name: str) -> str:
    """A text value as stored: one line, Unicode NFC, inner runs of space made one, at most
    MAX_TEXT characters."""
    if has_control_characters(value):
        raise BadInput(f"{name} may not contain line breaks or control characters", field=name)
    value = " ".join(unicodedata.normalize("NFC", value).split())
    if len(value) > MAX_TEXT:
        raise BadInput(f"{name} may be at most {MAX_TEXT} characters long", field=name)
    return value


def check_values(
    raw: Mapping[str, object], declared: Sequence[FieldSpec], *, require: bool = True
) -> dict[str, str]:
    """The values to store for what a person gave, checked against the declaration.

    An unknown field, a value outside a field's choices, text that is too long or holds control
    characters: `BadInput` naming the field. An empty value means "not given" and is not stored.
    With `require`, a required field left empty is refused too (a sign-up; not a change of one
    value)."""
    by_name = {spec.name: spec for spec in declared}
    stored: dict[str, str] = {}
    for name, value in raw.items():
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(by_name) or "none"
            raise BadInput(
                f"unknown field {_shown(name)} (this course's fields: {known})", field=name
            )
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadInput(f"{name} must be text", field=name)
        text = clean_text(value, name) if spec.is_text else value
        if not text:
            continue
        if not spec.is_text and text not in spec.choices:
            raise BadInput(
                f"{name} must be one of {', '.join(spec.choices)}; not {_shown(value)}", field=name
            )
        stored[name] = text
    if require:
        for spec in declared:
            if spec.required and spec.name not in stored:
                raise BadInput(f"{spec.label} is required", field=spec.name)
    return stored


def complete(stored: Mapping[str, Any], declared: Sequence[FieldSpec]) -> dict[str, str]:
    """Every declared field's value for a person: what they gave, else the default. A value the
    course no longer offers (its choices changed) counts as not given; an undeclared one is
    dropped."""
    values: dict[str, str] = {}
    for spec in declared:
        value = stored.get(spec.name)
        given = isinstance(value, str) and value != "" and (spec.is_text or value in spec.choices)
        values[spec.name] = value if given and isinstance(value, str) else spec.default
    return values


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """`level=returning` as typed on the command line (`--field`, repeatable), not yet checked."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"--field takes NAME=VALUE, not {_shown(pair)}", field="fields")
        name = name.strip()
        if name in values:
            raise BadInput(f"--field {name} is given twice", field=name)
        values[name] = value
    return values


def _shown(text: str) -> str:
    shown = repr(text[:80] + ("..." if len(text) > 80 else ""))
    return re.sub(r"\s+", " ", shown)
