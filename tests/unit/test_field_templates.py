"""Templates that read a person's custom fields (`subscriber.fields.level`): the default where they gave
none, escaped like every personal value, and still filled from the stencil when only printed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.delivery import Job
from dripcourse.domain.fields import check_values, parse_declaration
from dripcourse.errors import BadInput
from dripcourse.mail.builder import CourseView, MessageBuilder
from dripcourse.mail.rendering import CourseRenderer, LessonContent, Links, Recipient
from dripcourse.mail.tokens import Signer
from dripcourse.store.models import DeliveryKind

FIELDS, _ = parse_declaration(
    {
        "level": {"choices": ["beginner", "returning"], "default": "beginner"},
        "club": {"text": True},
        "items": {"text": True},  # a name that is also a dict method: the field wins
    }
)
SETTINGS = replace(
    CourseSettings.from_json(
        {
            "title": "Runners E-Course",
            "brand": "Northside Physio",
            "sender": {"name": "Northside Physio", "email": "course@northside-physio.example"},
            "footer": {"postal_address": "418 Birchmount Lane, Toronto ON"},
        }
    ),
    fields=FIELDS,
)
LINKS = Links(unsubscribe="https://x.example/u/t", view_online="https://x.example/v/t")
PRINTS = """\
Hi {{ subscriber.first_name }}, this week is written for a {{ subscriber.fields.level }} runner.

Say hello to everyone at **{{ subscriber.fields.club }}** ({{ subscriber.fields.items }}).
"""
SUBJECT = "Lesson 1 for {{ subscriber.fields.level }} runners"
TOM = Recipient(
    email="tom@example.com",
    name="Tom",
    fields={"level": "returning", "club": "<b>Tom & Jerry's</b>", "items": '"quoted"'},
)


def renderer(body: str = PRINTS, subject: str = SUBJECT) -> CourseRenderer:
    lesson = LessonContent("feet", 1, subject, "Feet first", {}, body, "01-feet.md")
    return CourseRenderer(settings=SETTINGS, lessons=[lesson])


def test_a_lesson_that_only_prints_fields_is_filled_from_the_stencil_byte_for_byte() -> None:
    course = renderer()
    fast = course.render("feet", TOM, LINKS)
    assert course._stencils["feet"] is not None, "printing a field keeps the stencil"
    full = course.render_in_full("feet", TOM, LINKS)
    assert (fast.subject, fast.html, fast.text) == (full.subject, full.html, full.text)
    assert fast.subject == "Lesson 1 for returning runners"


def test_a_field_value_is_escaped_in_html_and_plain_in_text() -> None:
    rendered = renderer().render("feet", TOM, LINKS)
    assert "&lt;b&gt;Tom &amp; Jerry's&lt;/b&gt;" in rendered.html
    assert "<b>Tom" not in rendered.html
    assert "**<b>Tom & Jerry's</b>**" not in rendered.text
    assert "<b>Tom & Jerry's</b>" in rendered.text
    assert '("quoted")' in rendered.text


def test_the_default_applies_to_someone_who_gave_none() -> None:
    rendered = renderer().render("feet", Recipient(email="ann@example.com", name="Ann"), LINKS)
    assert "written for a beginner runner" in rendered.text
    assert "everyone at" in rendered.text  # club: empty, not an error


def test_a_lesson_that_branches_on_a_field_is_rendered_in_full_and_right() -> None:
    body = "{% if subscriber.fields.level == 'returning' %}Welcome back.{% else %}Welcome.{% endif %}\n"
    course = renderer(body=body, subject="Lesson 1")
    back = course.render("feet", TOM, LINKS)
    new = course.render("feet", Recipient(email="ann@example.com"), LINKS)
    assert course._stencils["feet"] is None
    assert "Welcome back." in back.text and "Welcome back." not in new.text


def test_a_field_the_course_does_not_declare_is_a_template_error() -> None:
    course = renderer(body="{{ subscriber.fields.shoe_size }}\n", subject="Lesson 1")
    with pytest.raises(Exception, match="shoe_size"):
        course.render("feet", TOM, LINKS)


def test_the_message_sent_reads_the_enrolment_s_fields() -> None:
    course = renderer()
    now = datetime(2027, 3, 15, 12, tzinfo=UTC)
    job = Job(
        delivery_id=1,
        kind=DeliveryKind.LESSON,
        enrollment_id=1,
        course_id=1,
        lesson_key="feet",
        message_id="<1@x.example>",
        email="tom@example.com",
        name="Tom",
        timezone="UTC",
        due_at=now,
        attempts=1,
        first_attempt_at=now,
        fields={"level": "returning"},
    )
    builder = MessageBuilder(Signer(b"k" * 32), "https://courses.example.org", None, None)
    message = builder.build(job, CourseView("runners", SETTINGS, course), now)
    assert b"Subject: Lesson 1 for returning runners" in message.data


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["beginner", "returning"]))
def test_any_club_name_fills_the_stencil_exactly_as_a_full_render(club: str, level: str) -> None:
    try:
        stored = check_values({"club": club, "level": level}, FIELDS)
    except BadInput:
        return  # never stored, never rendered
    recipient = Recipient(email="a@example.com", fields=stored)
    course = renderer()
    fast: Any = course.render("feet", recipient, LINKS)
    full: Any = course.render_in_full("feet", recipient, LINKS)
    assert (fast.subject, fast.html, fast.text) == (full.subject, full.html, full.text)


HOSTILE_CLUBS = ['"><script>x</script>', "a > b & 'c'", "\u00a0nbsp\u00a0", 'x" onmouseover="y']


@pytest.mark.parametrize("club", HOSTILE_CLUBS)
def test_a_value_in_an_attribute_stays_in_it_and_matches_the_full_render(club: str) -> None:
    # A `>` inside an earlier attribute value must not pass for the end of the tag.
    layout = (
        '<html><body><a title="a>b" href="https://x.example/?c={{ subscriber.fields.club }}">'
        "{{ subscriber.fields.club }}</a><!-- {{ subscriber.fields.club }} -->"
        "{% block body %}{% endblock %}</body></html>"
    )
    lesson = LessonContent("feet", 1, "Lesson 1", "Feet first", {}, "Hi.\n", "01-feet.md")
    course = CourseRenderer(settings=SETTINGS, lessons=[lesson], layout_html=layout)
    recipient = Recipient(email="a@example.com", fields={"club": club})
    fast = course.render("feet", recipient, LINKS)
    assert course._stencils["feet"] is not None
    assert fast.html == course.render_in_full("feet", recipient, LINKS).html
    # Parsed as a mail client would: one link with its two attributes, the value inside them.
    tags = Tags()
    tags.feed(fast.html)
    assert [tag for tag, _ in tags.found] == ["html", "head", "body", "a", "p"]
    assert tags.found[3][1] == {"title": "a>b", "href": f"https://x.example/?c={club}"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))
