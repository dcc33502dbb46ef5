"""Jinja2's mistakes in an author's words (templatemistakes.py): the line a block that is never
closed opened on, whatever else the template holds, and the message a message build meets at send
time, when no template source is at hand to say how the name was written."""

from __future__ import annotations

import jinja2
import pytest

from dripcourse.domain.course_settings import CourseSettings, Sender
from dripcourse.mail.rendering import CourseRenderer, LessonContent, Links, Recipient
from dripcourse.mail.templatemistakes import UnknownName, unclosed_block_line

SOURCES = {
    "an if alone": ("a\n{% if x %}\nb\n{{ y }}\n", 2),
    "the innermost of two": ("{% for a in b %}\n{% if a %}\n{{ a }}\n", 2),
    "an inner block closed": ("{% if x %}\n{% for a in b %}{{ a }}{% endfor %}\n{{ z }}\n", 1),
    "a set with a value is no block": ("{% if x %}\n{% set y = 1 %}\n{{ y }}\n", 1),
    "a set block is one": ("{% if x %}{% endif %}\n{% set y %}\nz\n", 2),
    "whitespace control": ("{%- if x -%}\n{{ y }}\n", 1),
    "tags in raw and comments": ("{% if x %}\n{% raw %}{% for %}{% endraw %}{# {% if %} #}\n", 1),
    "everything closed": ("{% if x %}{% for a in b %}{% endfor %}{% endif %}\n", None),
}


@pytest.mark.parametrize(("source", "line"), list(SOURCES.values()), ids=list(SOURCES))
def test_the_innermost_block_never_closed_is_found_at_its_line(source: str, line: int) -> None:
    assert unclosed_block_line(source) == line


def test_a_message_built_at_send_time_names_the_field_and_the_known_ones() -> None:
    lesson = LessonContent(key="feet", number=1, subject="Hi", title="Feet", data={}, body="x")
    renderer = CourseRenderer(
        settings=CourseSettings(
            title="T", brand="B", sender=Sender("S", "s@example.com"), postal_address="1 Street"
        ),
        lessons=[lesson],
        layout_html="<p>{{ subscriber.surname }}</p>",
        layout_text="{{ subscriber.surname }}",
    )
    recipient = Recipient(email="ada@example.com", name="Ada")

    with pytest.raises(jinja2.UndefinedError) as raised:
        renderer.render_in_full("feet", recipient, Links("https://u.example", "https://v.example"))

    assert isinstance(raised.value, UnknownName)
    assert str(raised.value) == (
        "unknown field surname; known: email, fields, first_name, name, timezone"
    )
