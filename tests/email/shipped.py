"""The shipped lessons as a sample subscriber receives them: one `LessonMail` per lesson file.

Each lesson of each course under emails/ is built by `sample_message`, the same code path as a real
send, so the bytes under test carry every header a subscriber's provider sees. Imported by the
tests of this folder, and by bench/email_quality.py for the table in docs/email-quality.md.
"""

from __future__ import annotations

import email
import email.policy
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

from dripcourse.courses.catalog import load_sources, view_of_source
from dripcourse.courses.media import collect_media
from dripcourse.mail.builder import MessageBuilder, sample_message
from dripcourse.mail.rendering import Recipient
from dripcourse.mail.tokens import Signer

ROOT = Path(__file__).resolve().parents[2]
EMAILS = ROOT / "emails"
SUBSCRIBER = Recipient(
    email="ada.lovelace@example.com", name="Ada Lovelace", timezone="Europe/London"
)
BASE_URL = "https://courses.northside-physio.example"
SECRET_KEY = "email-quality-tests-" + "k" * 32
MEDIA_ROOT = f"{BASE_URL}/media"
"""Where the lessons' images are served (see `shipped_images`)."""


@dataclass(frozen=True)
class LessonMail:
    """One lesson as the sample subscriber receives it."""

    course: str
    key: str
    file_stem: str
    """The lesson file's name without `.md`: `01-feet`."""
    data: bytes
    """The whole message, headers and all, exactly as sent."""
    title: str
    front_matter: dict[str, Any]
    """The lesson's front matter but its subject and title."""
    body_markdown: str

    @property
    def name(self) -> str:
        return f"{self.course}-{self.file_stem}"

    @functools.cached_property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> MIMEPart:
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None or part.get_content_type() != f"text/{subtype}":
            raise AssertionError(f"{self.name}: the message has no text/{subtype} part")
        return part

    @property
    def html(self) -> str:
        return _lines(str(self.part("html").get_content()))

    @property
    def html_bytes(self) -> bytes:
        """The HTML part's body as the client decodes it: what Gmail's 102 KB limit counts."""
        payload = self.part("html").get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload

    @property
    def text(self) -> str:
        """The text part as a reader sees it: lines, not their CRLF ends on the wire."""
        return _lines(str(self.part("plain").get_content()))


def sample_builder() -> MessageBuilder:
    return MessageBuilder(Signer(SECRET_KEY), BASE_URL)


def send_time() -> datetime:
    # Now, as in a real send: SpamAssassin judges the Date header against the time it runs.
    return datetime.now(UTC).replace(microsecond=0)


@functools.cache
def shipped_lessons() -> tuple[LessonMail, ...]:
    """Every lesson of every course under emails/, in course and file order."""
    builder, now = sample_builder(), send_time()
    mails = []
    for source in load_sources(EMAILS):
        view = view_of_source(source, MEDIA_ROOT)
        for lesson in source.lessons:
            message = sample_message(builder, view, lesson.key, SUBSCRIBER, now)
            mails.append(
                LessonMail(
                    course=source.slug,
                    key=lesson.key,
                    file_stem=lesson.file.stem,
                    data=message.data,
                    title=lesson.title,
                    front_matter=lesson.data,
                    body_markdown=lesson.body,
                )
            )
    return tuple(mails)


@functools.cache
def shipped_images() -> dict[str, tuple[str, bytes]]:
    """Every processed image of the shipped courses by its URL: (content type, bytes), as
    `/media` serves them after `courses sync`."""
    served = {}
    for source in load_sources(EMAILS):
        for name, file in collect_media(source).files.items():
            image = file.processed
            served[f"{MEDIA_ROOT}/{source.slug}/{name}"] = (image.content_type, image.data)
    return served


def _lines(content: str) -> str:
    return content.replace("\r\n", "\n")
