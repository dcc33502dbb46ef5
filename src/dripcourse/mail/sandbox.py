"""The one Jinja2 environment that course text compiles in: Jinja2's immutable sandbox.

Lesson bodies, subjects and course layouts are written by course authors, who are not the operator.
In a plain `jinja2.Environment`, `{{ cycler.__init__.__globals__.os.popen('id').read() }}` runs a
command as the user dripcourse runs as. The sandbox refuses attributes that start with an underscore
and Python's internals (function globals, frames, code objects, `str.format` reaching into them),
and, being immutable, the methods that change a list, dict or set in place (`.append`, `.update`),
so the course settings every message shares stay as they were read. A refused access raises
`jinja2.exceptions.SecurityError`, a `TemplateError` like any other mistake in a template:
`courses check` reports it as `file:line: message`, and the dispatcher fails that one delivery.

What it does not bound is work: `range()` is capped, so `range(10**9)` fails at once instead of
looping for minutes, but nested loops, `'x' * 10**9` or a recursive macro cost what they cost.
Only someone who can write the course files can write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dripcourse.mail.templatemistakes import AuthorUndefined

RANGE_CAP = 100_000
"""Items a course template may ask `range()` for; the built-in layout asks for 30."""


def course_environment(
    loader: jinja2.BaseLoader, *, autoescape: bool, **options: Any
) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment for course templates; undefined names are errors, as everywhere,
    said in the author's words (`templatemistakes.py`)."""
    env = ImmutableSandboxedEnvironment(
        loader=loader, undefined=AuthorUndefined, autoescape=autoescape, **options
    )
    env.globals["range"] = capped_range
    return env


def named_sources(sources: Mapping[str, str]) -> jinja2.BaseLoader:
    """Templates by name, each compiled with its name as its file name, so the frames of an error's
    traceback say which template and line it came from (`jinja2.DictLoader` leaves them unnamed)."""
    return jinja2.FunctionLoader(
        lambda name: (sources[name], name, lambda: True) if name in sources else None
    )


def capped_range(*args: int) -> range:
    """`range()` as course templates see it: at most RANGE_CAP items.

    Jinja2's sandbox has a cap of its own, but it raises OverflowError; a SecurityError is a
    template error, reported and handled like every other refusal of the sandbox.
    """
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:  # more items than an index can hold
        count = RANGE_CAP + 1
    if count > RANGE_CAP:
        raise SecurityError(
            f"range() of more than {RANGE_CAP:,} items is refused in course templates"
        )
    return numbers
