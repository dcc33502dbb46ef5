"""Personalisation by substitution: render a lesson once, fill in each recipient in microseconds.

Rendering a lesson through Jinja2 and inlining its CSS takes about a millisecond; a burst of 100,000
lessons cannot pay that per message. Most lessons only *print* personal values (`{{
subscriber.first_name }}`, `{{ links.unsubscribe }}`), so a lesson is rendered once with placeholder
words in their place, its CSS inlined once, and split at the placeholders; each message then joins
the pieces with the recipient's values (HTML-escaped in the HTML part).

A template that does anything else with a personal value (an `{% if subscriber.name %}`, a filter)
is not eligible: the Jinja2 syntax tree is checked, and such lessons are rendered in full per
recipient, exactly as before.

A course's custom fields are personal values too: `{{ subscriber.fields.level }}` printed is filled in
like a name. Their placeholders follow PERSONAL's, in the order the course declares its fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import jinja2
from jinja2 import nodes
from markupsafe import escape

# The values a lesson may print per recipient, in a fixed order: a placeholder's number is its index.
PERSONAL: tuple[tuple[str, str], ...] = (
    ("subscriber", "email"),
    ("subscriber", "name"),
    ("subscriber", "first_name"),
    ("subscriber", "timezone"),
    ("links", "unsubscribe"),
    ("links", "view_online"),
    ("links", "early"),
)
_OBJECTS = {obj for obj, _ in PERSONAL}
_PLACEHOLDER = re.compile(r"DCV(\d+)Z")  # as many digits as PERSONAL ever needs


def placeholder(index: int) -> str:
    return f"DCV{index}Z"


class Placeholders:
    """Stands in for `subscriber` or `links` while a stencil is rendered; `fields` are the
    course's field names (for `subscriber.fields.<name>`)."""

    def __init__(self, obj: str, fields: Sequence[str] = ()) -> None:
        for index, (owner, attr) in enumerate(PERSONAL):
            if owner == obj:
                setattr(self, attr, placeholder(index))
        if obj == "subscriber":
            self.fields = _FieldPlaceholders(fields)


class _FieldPlaceholders:
    def __init__(self, fields: Sequence[str]) -> None:
        for index, name in enumerate(fields, start=len(PERSONAL)):
            setattr(self, name, placeholder(index))


@dataclass(frozen=True, slots=True)
class Pieces:
    """A rendered text cut at its placeholders: literals[0] slot[0] literals[1] ... literals[-1]."""

    literals: tuple[str, ...]
    slots: tuple[int, ...]

    @classmethod
    def cut(cls, text: str) -> Pieces:
        parts = _PLACEHOLDER.split(text)
        return cls(tuple(parts[0::2]), tuple(int(slot) for slot in parts[1::2]))

    def fill(self, values: Sequence[str], contexts: Sequence[str] | None = None) -> str:
        """The text with `values` in its slots; with `contexts` (HTML), each escaped for its place."""
        joined: list[str] = [""] * (2 * len(self.slots) + 1)
        joined[0::2] = self.literals
        if contexts is None:
            joined[1::2] = [values[slot] for slot in self.slots]
        else:
            joined[1::2] = [
                _escaped(values[slot], context)
                for slot, context in zip(self.slots, contexts, strict=True)
            ]
        return "".join(joined)


@dataclass(frozen=True, slots=True)
class Stencil:
    subject: Pieces
    html: Pieces
    text: Pieces
    html_contexts: tuple[str, ...] = ()
    """Where each slot of `html` sits (`html_contexts`); empty: everywhere markupsafe's escape."""

    def fill(self, values: Sequence[str]) -> tuple[str, str, str]:
        """Subject, HTML and text for one recipient; `values` in the order of PERSONAL."""
        html = self.html.fill(values, self.html_contexts or None)
        return self.subject.fill(values), html, self.text.fill(values)


# A full render escapes a value (Jinja's autoescape), then the CSS inliner parses the HTML and writes
# it out again as the HTML standard's serialisation does: in text only & < > and no-break spaces are
# escaped, in an attribute value & " and no-break spaces, in <script> or <style> nothing. A value
# escaped the same way at the same place gives the same bytes as the full render.
_SERIALISED = {
    "text": str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\xa0": "&nbsp;"}),
    "attribute": str.maketrans({"&": "&amp;", '"': "&quot;", "\xa0": "&nbsp;"}),
}
_RAW_ELEMENTS = ("script", "style")
_TAG_START = re.compile(r"</?([a-zA-Z][^\s/>]*)")


def html_contexts(pieces: Pieces) -> tuple[str, ...]:
    """For each slot of an inlined HTML text: `text`, `attribute` (inside a tag) or `raw` (inside
    <script>, <style> or a comment, where the serialiser writes what Jinja escaped as it is).

    One pass over the text as the serialiser wrote it: in text a `<` is always escaped, so one that
    starts a tag name opens a tag; in a tag, attribute values are always in double quotes (a `"` in
    them escaped), so a `>` outside quotes closes it. A `>` inside a value cannot pass for the end.
    """
    contexts: list[str] = []
    state, quoted, raw_end, tag = "text", False, "", ""
    for literal in pieces.literals[:-1]:
        at = 0
        while at < len(literal):
            if state == "text":
                found = literal.find("<", at)
                if found < 0:
                    break
                if literal.startswith("<!--", found):
                    state, raw_end, at = "raw", "-->", found + 4
                    continue
                opened = _TAG_START.match(literal, found)
                if opened is None:
                    at = found + 1
                    continue
                closing = literal.startswith("</", found)
                state, quoted, at = "tag", False, opened.end()
                tag = "" if closing else opened.group(1).lower()
            elif state == "tag":
                ends = {'"': literal.find('"', at), ">": -1 if quoted else literal.find(">", at)}
                hits = [(index, char) for char, index in ends.items() if index >= 0]
                if not hits:
                    break
                index, char = min(hits)
                at = index + 1
                if char == '"':
                    quoted = not quoted
                elif tag in _RAW_ELEMENTS:
                    state, raw_end = "raw", f"</{tag}"
                else:
                    state = "text"
            else:  # raw: until the end of the element or comment
                found = literal.lower().find(raw_end, at)
                if found < 0:
                    break
                if raw_end == "-->":
                    state, at = "text", found + 3
                else:
                    state, quoted, tag, at = "tag", False, "", found + len(raw_end)
        contexts.append({"text": "text", "tag": "attribute", "raw": "raw"}[state])
    return tuple(contexts)


def _escaped(value: str, context: str) -> str:
    if context == "raw":
        return str(escape(value))
    return value.translate(_SERIALISED[context])


def only_printed(env: jinja2.Environment, names: Iterable[str], fields: Sequence[str] = ()) -> bool:
    """True if the templates (and the layouts they extend) use personal values only by printing
    them (a custom field among `fields` too), and never contain a placeholder word of their own."""
    for name in names:
        if not env.loader:
            return False
        source, filename, _ = env.loader.get_source(env, name)
        key = (_syntax_of(env), source, name, filename, tuple(fields))
        try:
            verdict = _VERDICTS[key]
        except KeyError:
            verdict = _verdict(env, source, name, filename, fields)
            if len(_VERDICTS) >= _VERDICTS_KEPT:
                _VERDICTS.clear()
            _VERDICTS[key] = verdict
        if verdict is None:
            return False
        if not all(only_printed(env, [parent], fields) for parent in verdict):
            return False
    return True


def _syntax_of(env: jinja2.Environment) -> tuple[object, ...]:
    """What parsing depends on: the same source parses alike in environments that agree here."""
    return (
        type(env),
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        tuple(sorted(env.extensions)),
    )


_VERDICTS: dict[tuple[object, ...], tuple[str, ...] | None] = {}
"""`_verdict` by syntax, source, name and fields: every course sync and every builder asks it of
the same layouts, and parsing them is the slow part of both."""
_VERDICTS_KEPT = 512


def _verdict(
    env: jinja2.Environment, source: str, name: str, filename: str | None, fields: Sequence[str]
) -> tuple[str, ...] | None:
    """One template's own verdict: None if it uses a personal value other than by printing it (or
    holds a placeholder word), else the layouts it extends, to be judged in turn. A syntax error is
    raised (so never kept), named with the template's name."""
    if _PLACEHOLDER.search(source):
        return None
    tree = env.parse(source, name, filename)
    printed = {
        id(child.node)
        for output in tree.find_all(nodes.Output)
        for child in output.nodes
        if isinstance(child, nodes.Getattr)
        and isinstance(child.node, nodes.Name)
        and (child.node.name, child.attr) in PERSONAL
    } | {
        id(child.node.node)
        for output in tree.find_all(nodes.Output)
        for child in output.nodes
        if isinstance(child, nodes.Getattr)
        and child.attr in fields
        and isinstance(child.node, nodes.Getattr)
        and child.node.attr == "fields"
        and isinstance(child.node.node, nodes.Name)
        and child.node.node.name == "subscriber"
    }
    personal = [n for n in tree.find_all(nodes.Name) if n.name in _OBJECTS]
    if any(id(name) not in printed for name in personal):
        return None
    parents = [n.template for n in tree.find_all(nodes.Extends)]
    if not all(isinstance(p, nodes.Const) and isinstance(p.value, str) for p in parents):
        return None
    return tuple(str(p.value) for p in parents if isinstance(p, nodes.Const))


def values_of(subscriber: object, links: object, fields: Sequence[str] = ()) -> list[str]:
    """The recipient's values in placeholder order: PERSONAL's, then each of `fields`."""
    owners: Mapping[str, object] = {"subscriber": subscriber, "links": links}
    values = [str(getattr(owners[obj], attr)) for obj, attr in PERSONAL]
    own = getattr(subscriber, "fields", None)
    return values + [str(getattr(own, name)) for name in fields]
