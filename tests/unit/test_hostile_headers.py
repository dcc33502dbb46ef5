"""From what a stranger types to the bytes on the wire: header injection attempted the whole way.

A name and an address pass the one validation the form, the API, the CLI and the importer share
(`clean_name`, `normalise_email`); a course's title, sender name, subject and lesson text pass the
course-file reader. Whatever is accepted is then rendered (both ways: the stencil fast path and
Jinja in full), composed and read back with the standard library's parser as a mail client would
(`policy=email.policy.default`): one of each header, the same display name and address, no
defects, no line over 998 octets, CRLF only. The name reaches the subject too, through
`{{ subscriber.first_name }}`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from test_mime import read_back

from dripcourse.courses.catalog import load_sources, view_of_source
from dripcourse.domain.validation import clean_name, normalise_email
from dripcourse.errors import BadInput
from dripcourse.mail.builder import CourseView, MessageBuilder, sample_job
from dripcourse.mail.rendering import CourseRenderer, Links, Recipient, RenderedLesson, one_line
from dripcourse.mail.tokens import Signer
from dripcourse.store.models import DeliveryKind

ISSUE_NAME = (
    "=?utf-8?q?Ada=0D=0AReply-To:_attacker=40evil.example=0D=0A=0D=0A"
    "<h1>Your_account_is_locked</h1>?="
)
SENDER = "course@northside-physio.example"
REPLY_TO = "hello@northside-physio.example"
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
BUILDER = MessageBuilder(Signer("hostile-header-tests-" + "k" * 32), "https://courses.example.org")
EXPECTED_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
}

# Every Unicode category (validation refuses control characters, separators and lone surrogates).
any_text = st.text(st.characters(), max_size=60)
one_line_text = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=60)
# Encoded-words that would decode to a line break and a header of the attacker's choice.
smuggled = st.sampled_from(
    [
        "Ada=0D=0AReply-To:_attacker=40evil.example",
        "Ada=0D=0ABcc:_all=40evil.example=0D=0A=0D=0A<h1>locked</h1>",
        "QWRhDQpCY2M6IGV2aWxAZXZpbC5leGFtcGxl",  # base64 of "Ada\r\nBcc: evil@evil.example"
        "=0A=0A",
        "",
    ]
)
look_alike = st.builds(
    "=?{}?{}?{}?=".format,
    st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "us-ascii", "x-unknown", ""]),
    st.sampled_from(["q", "Q", "b", "B", "x"]),
    smuggled | st.text(st.characters(max_codepoint=127, exclude_categories=["Cc"]), max_size=30),
)
names = st.one_of(
    any_text,
    look_alike,
    st.lists(look_alike | one_line_text, min_size=2, max_size=5).map(" ".join),
    # At the length limits: 200 characters, 600 bytes of UTF-8.
    st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=190, max_size=200),
    st.text(st.sampled_from("Zoë 田中 😀"), min_size=140, max_size=200),
)
idn_domains = st.sampled_from(
    ["bücher.example", "xn--bcher-kva.example", "BÜCHER.Example", "пример.рф", "例え.テスト"]
)
local_parts = st.from_regex(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,10})?", fullmatch=True
)
addresses = st.one_of(
    st.emails(),
    st.emails().map(str.upper),
    st.builds("{}@{}".format, local_parts, idn_domains),
    st.builds("{}@{}".format, st.just("jörg"), idn_domains),  # refused: non-ASCII local part
)
# Course text: no "{" or "}", so that it stays text rather than becoming Jinja.
course_text = st.text(
    st.characters(exclude_characters="{}", exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=60
) | st.text(st.characters(exclude_characters="{}", exclude_categories=["Cs"]), max_size=60)
subjects = course_text | course_text.map(lambda text: "{{ subscriber.first_name }}: " + text)
bodies = st.text(
    st.characters(exclude_characters="{}", exclude_categories=["Cs"]), max_size=300
).map(
    lambda text: (
        "Hi {{ subscriber.first_name }},\n\n" + text + "\n\n[more](https://example.org/a)\n"
    )
)


class InFull(CourseRenderer):
    """Every lesson rendered by Jinja, never from its stencil."""

    def render(self, key: str, recipient: Recipient, links: Links) -> RenderedLesson:
        return self.render_in_full(key, recipient, links)


def toml_string(text: str) -> str:
    """A TOML basic string holding exactly `text`."""
    escaped = "".join(
        {"\\": "\\\\", '"': '\\"'}.get(ch)
        or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
        for ch in text
    )
    return f'"{escaped}"'


def read_course(
    folder: Path, title: str, sender_name: str, subject: str, body: str
) -> CourseView | None:
    """The course as written to files and read back; None when the reader refuses it."""
    (folder / "course.toml").write_text(
        f'title = {toml_string(title)}\nbrand = "Northside Physio"\n'
        f'[sender]\nname = {toml_string(sender_name)}\nemail = "{SENDER}"\n'
        f'reply_to = "{REPLY_TO}"\n'
        '[footer]\npostal_address = "418 Birchmount Lane, Toronto"\n',
        encoding="utf-8",
    )
    (folder / "01-first.md").write_text(
        f'+++\nsubject = {toml_string(subject)}\ntitle = "First"\n+++\n{body}', encoding="utf-8"
    )
    try:
        [source] = load_sources(folder.parent, folder)
    except BadInput:
        return None
    if source.problems:
        return None
    return view_of_source(source)


def accepted(check: Callable[[str], str], value: str) -> str | None:
    try:
        return check(value)
    except BadInput:
        return None


def built(course: CourseView, recipient: Recipient, kind: DeliveryKind) -> EmailMessage:
    job = sample_job(course, "first", recipient, NOW)
    if kind is DeliveryKind.CONFIRMATION:
        job = replace(job, kind=kind, lesson_key=None)
    message = BUILDER.build(job, course, NOW)
    assert message.recipient == recipient.email
    return read_back(message.data)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    name=names,
    address=addresses,
    title=course_text,
    sender_name=course_text,
    subject=subjects,
    body=bodies,
)
@example(
    name=ISSUE_NAME,
    address="user@xn--bcher-kva.example",
    title="Runners E-Course",
    sender_name="Northside Physio",
    subject="{{ subscriber.first_name }}, lesson 1",
    body="Hi {{ subscriber.first_name }},\n",
)
def test_whatever_validation_accepts_reads_back_exactly(
    name: str, address: str, title: str, sender_name: str, subject: str, body: str
) -> None:
    clean = accepted(clean_name, name)
    normal = accepted(normalise_email, address)
    if clean is None or normal is None:
        event("name or address refused")
        return  # refused at the door with a readable reason (see test_validation.py)
    assert normal.isascii()
    recipient = Recipient(email=normal, name=clean)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hostile"
        folder.mkdir()
        course = read_course(folder, title, sender_name, subject, body)
    if course is None:
        event("course text refused")
        return  # the author is told by `courses check`
    event("sent and read back")
    in_full = replace(course, renderer=InFull(**_fields_of(course.renderer)))
    first_name = recipient.first_name

    for view in (course, in_full):
        message = built(view, recipient, DeliveryKind.LESSON)
        names_seen = {name.lower() for name in message}
        assert names_seen == EXPECTED_HEADERS
        assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [(clean, normal)]
        assert [(a.display_name, a.addr_spec) for a in message["From"].addresses] == [
            (course.settings.sender.name, SENDER)
        ]
        assert message["Reply-To"] == REPLY_TO
        expected_subject = one_line(subject.replace("{{ subscriber.first_name }}", first_name))
        assert message["Subject"] == expected_subject
        assert str(message["List-Id"]).endswith(f"<hostile.{SENDER.split('@')[1]}>")

    confirmation = built(course, recipient, DeliveryKind.CONFIRMATION)
    assert [(a.display_name, a.addr_spec) for a in confirmation["To"].addresses] == [
        (clean, normal)
    ]
    assert confirmation["Reply-To"] == REPLY_TO
    assert confirmation.get_all("Reply-To") == [REPLY_TO]


def _fields_of(renderer: CourseRenderer) -> dict[str, object]:
    return {
        "settings": renderer.settings,
        "lessons": renderer.lessons,
        "layout_html": renderer.layout_html,
        "layout_text": renderer.layout_text,
        "total": renderer.total,
    }
