"""What a subscriber's mail client receives: a lesson personalised in HTML and text, then built into
one `multipart/alternative` message with the list headers (rendering.py, mime.py, messages.py).

The course settings below are written out by hand in their stored JSON shape (read as a database row
is, by `CourseSettings.from_json`), so that these tests need no files.
"""

from __future__ import annotations

import email.policy
import html
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.delivery import Job
from dripcourse.mail.builder import CourseView, MessageBuilder
from dripcourse.mail.mime import Envelope, compose
from dripcourse.mail.rendering import (
    CourseRenderer,
    LessonContent,
    Links,
    Recipient,
    RenderedLesson,
)
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.models import DeliveryKind

SETTINGS_JSON: dict[str, Any] = {
    "title": "Runners E-Course",
    "description": "Ten weekly lessons for runners, from your feet up.",
    "brand": "Northside Physio",
    "language": "en",
    "sender": {
        "name": "Northside Physio",
        "email": "course@northside-physio.example",
        "reply_to": "hello@northside-physio.example",
        "unsubscribe_email": "leave@northside-physio.example",
    },
    "schedule": {
        "cadence_days": 7,
        "send_time": "08:00",
        "send_days": [0, 1, 2, 3, 4, 5, 6],
        "timezone": "America/Toronto",
    },
    "contact": {"email": "hello@northside-physio.example", "phone": "+1 416 555 0147"},
    "footer": {"postal_address": "418 Birchmount Lane, Unit 2, Toronto ON M4C 0A7, Canada"},
    "call_to_action": {
        "heading": "Would you like a plan built around you?",
        "text": "A running assessment ends with a home program that fits your training week.",
        "label": "Book a running assessment",
        "url": "https://northside-physio.example/book",
    },
    "links": {
        "website": "https://northside-physio.example",
        "equipment": "https://northside-physio.example/equipment",
    },
    "related": [
        {
            "title": "A ten-minute warm-up for any run",
            "url": "https://northside-physio.example/blog/ten-minute-warm-up",
            "summary": "A short routine of easy drills.",
        }
    ],
    "theme": {"accent": "#1d4ed8"},
}
SETTINGS = CourseSettings.from_json(SETTINGS_JSON)

LINKS = Links(
    unsubscribe="https://courses.example.org/unsubscribe/sample-token",
    view_online="https://courses.example.org/view/sample-token",
)
ADA = Recipient(email="ada@example.com", name="Ada Lovelace", timezone="Europe/London")

PERSONAL_BODY = """\
Hi *{{ subscriber.first_name }}*, and welcome, **{{ subscriber.first_name }}**.

Read [the warm-up guide, {{ subscriber.first_name }}](https://northside-physio.example/warm-up).

- a towel for {{ subscriber.first_name }}
- a tennis ball

Signed up as {{ subscriber.name }}.
"""


def lesson(
    body: str = PERSONAL_BODY, subject: str = "Lesson 1: Feet first", **data: Any
) -> LessonContent:
    return LessonContent(
        key="feet",
        number=1,
        subject=subject,
        title="Feet first",
        data={"preheader": "Every stride starts at your feet.", **data},
        body=body,
        source_file="01-feet.md",
    )


def render(recipient: Recipient = ADA, **lesson_args: Any) -> RenderedLesson:
    renderer = CourseRenderer(settings=SETTINGS, lessons=[lesson(**lesson_args)])
    return renderer.render("feet", recipient, LINKS)


class Elements(HTMLParser):
    """The start tags of an HTML document, in order, and its text with entities decoded."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def lesson_body(html: str) -> str:
    start = html.index('<div class="lesson-body">')
    return html[start : html.index("</div>", start)]


def text_body(text: str, first: str, last: str) -> str:
    """The text part from the line that starts with `first` to the end of the line with `last`."""
    start = text.index(first)
    end = text.index(last, start) + len(last)
    return text[start:end]


# -- personalisation survives Markdown -----------------------------------------------------------


def test_first_name_inside_emphasis_links_and_lists_is_personalised_in_html() -> None:
    body = lesson_body(render().html)

    assert "Hi <em>Ada</em>, and welcome, <strong>Ada</strong>." in body
    assert "the warm-up guide, Ada</a>" in body
    assert '<a href="https://northside-physio.example/warm-up"' in body
    assert ">a towel for Ada</li>" in body
    assert "Signed up as Ada Lovelace." in body
    assert "{{" not in body and "DCJ" not in body


def test_first_name_inside_emphasis_links_and_lists_is_personalised_in_text() -> None:
    text = render().text

    assert "Hi Ada, and welcome, Ada." in text
    assert "Read the warm-up guide, Ada [1]." in text
    assert "[1] https://northside-physio.example/warm-up" in text
    assert "- a towel for Ada\n- a tennis ball" in text
    assert "Signed up as Ada Lovelace." in text
    assert "{{" not in text and "DCJ" not in text


@pytest.mark.parametrize("name", ["", "   "])
def test_a_subscriber_without_a_name_is_greeted_as_there(name: str) -> None:
    rendered = render(Recipient(email="anon@example.com", name=name))

    assert "Hi <em>there</em>" in rendered.html
    assert "Hi there, and welcome, there." in rendered.text


# -- {% if %} blocks -------------------------------------------------------------------------------

TIGHT_IF = """\
Intro.

{% if subscriber.name %}
Hello again, {{ subscriber.name }}.
{% else %}
Hello, stranger.
{% endif %}

Bye.
"""
SPACED_IF = """\
Intro.

{% if subscriber.name %}

Hello again, {{ subscriber.name }}.

{% else %}

Hello, stranger.

{% endif %}

Bye.
"""


@pytest.mark.parametrize("body", [TIGHT_IF, SPACED_IF], ids=["tight", "spaced"])
@pytest.mark.parametrize(
    ("name", "greeting"),
    [("Ada Lovelace", "Hello again, Ada Lovelace."), ("", "Hello, stranger.")],
)
def test_if_else_on_their_own_lines_leave_no_empty_paragraph_in_html(
    body: str, name: str, greeting: str
) -> None:
    html = lesson_body(render(Recipient("ada@example.com", name), body=body).html)
    paragraphs = [p.strip() for p in Elements(html).text if p.strip()]

    assert paragraphs == ["Intro.", greeting, "Bye."]
    assert html.count("<p") == 3


@pytest.mark.parametrize("body", [TIGHT_IF, SPACED_IF], ids=["tight", "spaced"])
@pytest.mark.parametrize(
    ("name", "greeting"),
    [("Ada Lovelace", "Hello again, Ada Lovelace."), ("", "Hello, stranger.")],
)
def test_if_else_on_their_own_lines_keep_the_text_part_in_clean_paragraphs(
    body: str, name: str, greeting: str
) -> None:
    text = render(Recipient("ada@example.com", name), body=body).text

    # The text part reads as three paragraphs, one blank line apart, with no stray spaces.
    assert text_body(text, "Intro.", "Bye.") == f"Intro.\n\n{greeting}\n\nBye."


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("Ann & <b>Bo</b>", "Ann &amp; &lt;b&gt;Bo&lt;/b&gt;"),
    ],
)
def test_a_name_that_looks_like_markup_is_shown_as_written(name: str, escaped: str) -> None:
    body = "Hi {{ subscriber.name }},\n\n*{{ subscriber.name }}* - [{{ subscriber.name }}](https://x.example/)\n"
    subject = "Lesson 1 for {{ subscriber.name }}"
    hostile = render(Recipient("ann@example.com", name), body=body, subject=subject)
    plain = render(Recipient("ann@example.com", "Ann Bo"), body=body, subject=subject)

    # HTML: the same elements as for a harmless name, and the name escaped where it stands.
    assert Elements(hostile.html).tags == Elements(plain.html).tags
    assert f"Hi {escaped}," in hostile.html
    assert f"<em>{escaped}</em>" in hostile.html
    assert f"<title>Lesson 1 for {escaped}</title>" in hostile.html
    assert name not in hostile.html
    # Text and subject: verbatim.
    assert f"Hi {name}," in hostile.text
    assert hostile.subject == f"Lesson 1 for {name}"


# -- the subject ---------------------------------------------------------------------------------


def test_a_subject_template_that_produces_newlines_gives_one_line() -> None:
    subject = (
        "Lesson 1:\n{% if subscriber.name %}\n  Feet first,\n  {{ subscriber.first_name }}\n"
        "{% endif %}\n"
    )

    rendered = render(subject=subject)

    assert rendered.subject == "Lesson 1: Feet first, Ada"


def test_a_name_with_a_line_break_cannot_add_a_header_through_the_subject() -> None:
    sneaky = Recipient("ada@example.com", "Ada\r\nBcc: everyone@example.com")

    rendered = render(sneaky, subject="Lesson 1 for {{ subscriber.name }}")

    assert rendered.subject == "Lesson 1 for Ada Bcc: everyone@example.com"
    assert "\r" not in rendered.subject and "\n" not in rendered.subject


# -- CSS -----------------------------------------------------------------------------------------


def test_the_layout_css_is_inlined_and_the_phone_rules_are_kept() -> None:
    html = render().html

    assert "<link" not in html.lower()
    assert "Hi <em>Ada</em>" in html
    assert '<p style="margin: 0 0 16px;">Hi <em>Ada</em>' in html
    assert 'class="lesson-body"' in html
    assert "@media only screen and (max-width: 480px)" in html
    assert html.count('style="') > 20


# -- the MIME message ----------------------------------------------------------------------------

WHEN = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
UNSUBSCRIBE_URL = "https://courses.example.org/unsubscribe/eyJlIjo0Mn0.aGVsbG8"
ENVELOPE = Envelope(
    sender_name="Northside Physio",
    sender_email="course@northside-physio.example",
    recipient_name="Ada Lovelace",
    recipient_email="ada@example.com",
    message_id="<lesson.42@northside-physio.example>",
    date=WHEN,
    reply_to="hello@northside-physio.example",
    list_id="runners.northside-physio.example",
    list_name="Runners E-Course",
    unsubscribe_url=UNSUBSCRIBE_URL,
    unsubscribe_mailto="mailto:leave@northside-physio.example?subject=unsubscribe",
)


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def test_a_composed_lesson_is_text_then_html_with_all_list_headers() -> None:
    rendered = render()

    message = parse(compose(ENVELOPE, rendered.subject, rendered.text, rendered.html))

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert "Hi Ada, and welcome, Ada." in parts[0].get_content()
    assert "Hi <em>Ada</em>" in parts[1].get_content()
    assert message["From"] == "Northside Physio <course@northside-physio.example>"
    assert message["To"] == "Ada Lovelace <ada@example.com>"
    assert message["Subject"] == "Lesson 1: Feet first"
    assert message["Date"].datetime == WHEN
    assert message["Message-ID"] == "<lesson.42@northside-physio.example>"
    assert message["Reply-To"] == "hello@northside-physio.example"
    assert message["List-Id"] == "Runners E-Course <runners.northside-physio.example>"
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE_URL}>, <mailto:leave@northside-physio.example?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_non_ascii_names_and_subjects_round_trip() -> None:
    envelope = replace(ENVELOPE, sender_name="Physio Zoë Ñúñez", recipient_name="José Müller 山田")
    subject = "Lektion 1: Füße zuerst — bereit, José? 🏃"

    data = compose(envelope, subject, "Grüße ü", "<p>Grüße ü</p>")
    message = parse(data)

    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Physio Zoë Ñúñez"
    assert message["To"].addresses[0].display_name == "José Müller 山田"
    assert message["To"].addresses[0].addr_spec == "ada@example.com"
    assert [part.get_content().strip() for part in message.iter_parts()] == [
        "Grüße ü",
        "<p>Grüße ü</p>",
    ]


def test_a_300_character_unsubscribe_url_stays_one_unbroken_url() -> None:
    url = "https://courses.example.org/unsubscribe/" + "Ab9_-" * 52
    assert len(url) == 300

    data = compose(replace(ENVELOPE, unsubscribe_url=url), "Lesson 1", "text", "<p>html</p>")
    message = parse(data)

    header = message["List-Unsubscribe"]
    assert header.split(", ")[0] == f"<{url}>"
    raw_header = next(line for line in data.split(b"\r\n") if line.startswith(b"List-Unsub"))
    assert raw_header.startswith(b"List-Unsubscribe: <" + url.encode() + b">")
    assert b"=?" not in raw_header


def test_without_an_unsubscribe_url_there_is_no_one_click_header() -> None:
    envelope = replace(ENVELOPE, unsubscribe_url=None, unsubscribe_mailto=None)

    message = parse(compose(envelope, "Please confirm", "text", "<p>html</p>"))

    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


ENVELOPE_FIELDS = [
    "sender_name",
    "sender_email",
    "recipient_name",
    "recipient_email",
    "message_id",
    "reply_to",
    "list_id",
    "list_name",
    "unsubscribe_url",
    "unsubscribe_mailto",
]


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize("field", [*ENVELOPE_FIELDS, "subject"])
def test_a_line_break_in_any_header_value_is_refused(field: str, breaker: str) -> None:
    injected = f"{breaker}Bcc: everyone@example.com"
    envelope, subject = ENVELOPE, "Lesson 1"
    if field == "subject":
        subject += injected
    else:
        envelope = replace(ENVELOPE, **{field: getattr(ENVELOPE, field) + injected})

    with pytest.raises(ValueError, match=r"CR or LF|linefeed or carriage return"):
        compose(envelope, subject, "text", "<p>html</p>")


# -- messages.py: the message a subscriber is actually sent --------------------------------------


def job(kind: str = DeliveryKind.LESSON) -> Job:
    return Job(
        delivery_id=42,
        kind=kind,
        enrollment_id=7,
        course_id=1,
        lesson_key="feet" if kind != DeliveryKind.CONFIRMATION else None,
        message_id="<d42.runners@northside-physio.example>",
        email="ada@example.com",
        name="Ada Lovelace",
        timezone="Europe/London",
        due_at=datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
        attempts=1,
        first_attempt_at=datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
    )


def course_view(**lesson_args: Any) -> CourseView:
    renderer = CourseRenderer(settings=SETTINGS, lessons=[lesson(**lesson_args)])
    return CourseView("runners", SETTINGS, renderer)


def test_a_lesson_message_carries_signed_links_that_unsubscribe_this_enrolment() -> None:
    signer = Signer("test-secret-key")
    builder = MessageBuilder(signer, "https://courses.example.org/")

    outgoing = builder.build(job(), course_view(), WHEN)
    message = parse(outgoing.data)

    assert (outgoing.key, outgoing.sender, outgoing.recipient) == (
        "42",
        "course@northside-physio.example",
        "ada@example.com",
    )
    assert message["Subject"] == "Lesson 1: Feet first"
    assert message["Message-ID"] == "<d42.runners@northside-physio.example>"
    assert message["List-Id"] == "Runners E-Course <runners.northside-physio.example>"
    url, mailto = message["List-Unsubscribe"].split(", ")
    assert mailto == "<mailto:leave@northside-physio.example?subject=unsubscribe>"
    assert url.startswith("<https://courses.example.org/unsubscribe/") and url.endswith(">")
    token = url[1:-1].rpartition("/")[2]
    assert signer.read(Purpose.UNSUBSCRIBE, token) == {"e": 7}
    text, html = (part.get_content() for part in message.iter_parts())
    assert url[1:-1] in text and url[1:-1] in html
    assert "Hi Ada, and welcome, Ada." in text


def test_a_bare_url_in_a_lesson_is_a_link_tracked_like_any_other_when_tracking_is_on() -> None:
    signer = Signer("test-secret-key")
    builder = MessageBuilder(signer, "https://courses.example.org")
    body = (
        "Hi {{ subscriber.first_name }}, the drills are at https://northside-physio.example/drills."
    )
    view = course_view(body=body)
    view = replace(view, settings=replace(view.settings, tracks_clicks=True))

    message = parse(builder.build(job(), view, WHEN).data)
    text, html_part = (part.get_content() for part in message.iter_parts())

    tracked = "https://courses.example.org/c/"
    target = "https://northside-physio.example/drills"
    link = re.search(rf'<a href="({tracked}[^"]+)"[^>]*>{re.escape(target)}</a>\.', html_part)
    assert link, "the bare URL is not a tracked link"
    token, _, query = html.unescape(link.group(1)).removeprefix(tracked).partition("?u=")
    assert unquote(query) == target
    assert signer.read_bound(Purpose.CLICK, token, target) == {"d": 42}
    # The text part shows the address once, as written, untracked.
    assert f"the drills are at {target}." in text
    assert text.count(target) == 1 and tracked not in text


def test_a_test_send_has_its_prefix_in_the_subject() -> None:
    builder = MessageBuilder(Signer("test-secret-key"), "https://courses.example.org")

    outgoing = builder.build(job(), course_view(), WHEN, subject_prefix="[TEST] ")

    assert parse(outgoing.data)["Subject"] == "[TEST] Lesson 1: Feet first"


def test_a_confirmation_message_links_to_a_confirm_token_and_has_no_unsubscribe() -> None:
    signer = Signer("test-secret-key")
    builder = MessageBuilder(signer, "https://courses.example.org")

    message = parse(builder.build(job(DeliveryKind.CONFIRMATION), course_view(), WHEN).data)

    assert message["Subject"] == "Please confirm your subscription to Runners E-Course"
    assert message["List-Unsubscribe"] is None
    text = next(message.iter_parts()).get_content()
    start = text.index("https://courses.example.org/confirm/")
    token = text[start:].split()[0].rpartition("/")[2]
    assert signer.read(Purpose.CONFIRM, token) == {"e": 7}


# --- stencils: rendered once, filled per recipient ----------------------------------------------


def shipped_renderer() -> CourseRenderer:
    from dripcourse.courses.catalog import renderer_for_source
    from dripcourse.courses.files import read_course

    return renderer_for_source(read_course(Path(__file__).resolve().parents[2] / "emails/runners"))


HOSTILE = Recipient(email="o'neil@example.com", name='Ann <b>O\'Neil</b> & "Co"', timezone="UTC")
HOSTILE_LINKS = Links(
    unsubscribe="https://x.example/unsubscribe/a.b?c=1&d=<2>", view_online="https://x.example/v/d"
)


@pytest.mark.parametrize("recipient", [HOSTILE, Recipient(email="plain@example.com")])
def test_every_shipped_lesson_is_filled_from_a_stencil_exactly_like_a_full_render(
    recipient: Recipient,
) -> None:
    renderer = shipped_renderer()
    for lesson in renderer.lessons:
        fast = renderer.render(lesson.key, recipient, HOSTILE_LINKS)
        full = renderer.render_in_full(lesson.key, recipient, HOSTILE_LINKS)
        assert renderer._stencils[lesson.key] is not None, "the shipped lessons are eligible"
        assert (fast.subject, fast.text) == (full.subject, full.text)
        # The HTML differs only in how a character is escaped (&#39; or '), never in meaning.
        assert html.unescape(fast.html) == html.unescape(full.html)
        assert "<b>" not in fast.html


def test_a_lesson_that_branches_on_a_personal_value_is_rendered_in_full() -> None:
    body = "{% if subscriber.name %}Hi {{ subscriber.first_name }}{% else %}Hello{% endif %}\n"
    renderer = CourseRenderer(settings=SETTINGS, lessons=[lesson(body=body)])
    named = renderer.render("feet", Recipient(email="a@example.com", name="Ada"), LINKS)
    anonymous = renderer.render("feet", Recipient(email="b@example.com"), LINKS)
    assert renderer._stencils["feet"] is None
    assert "Hi Ada" in named.text and "Hello" in anonymous.text
