"""Builds the finished message: `multipart/alternative` (text, then HTML) with the list headers.

Written out with string formatting: `email.message.EmailMessage` and its generator took 1-3 ms a
lesson, most of a dispatch pass; this takes about 50 us. The output is byte for byte what
`EmailMessage` with `POLICY` writes for the same boundary whenever the stdlib sends the parts as 7bit
or 8bit, and has the same content otherwise; tests/unit/test_mime.py keeps the stdlib way as reference.

Headers (RFC 5322): a value of printable ASCII that fits on one line is written as it is. Lines may run
to 998 characters (2.1.1): with the stdlib's default of 78, a long unsubscribe URL would be folded
into encoded-words that no mail client can follow. Anything else - a non-ASCII name or subject that
needs RFC 2047 encoded-words, an address or Message-ID of unusual shape, a value too long for a line -
goes through the stdlib's own header classes, so it comes out exactly as it always has. A CR or LF in
any header value raises ValueError, as the stdlib does, so header injection is impossible.

Bodies (RFC 2045 2.7, 2.8, 6): lines end in CRLF; 7bit when ASCII and no line is over 998 bytes,
8bit when only the ASCII test fails, quoted-printable (C-fast `binascii.b2a_qp`) when a line is too
long for SMTP. The boundary (RFC 2046 5.1.1) has the stdlib's form and is checked against both bodies.
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import random
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.utils import format_datetime

POLICY = email.policy.SMTP.clone(max_line_length=998)
MAX_LINE = 998

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ADDR_SPEC = re.compile(rf"{_DOT_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
_PRINTABLE = re.compile(r"[ -~]+")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")
# RFC 5322 3.2.3 "specials": a display name holding one is written as a quoted-string.
_SPECIALS = re.compile(r'[()<>@,:;.\\"\[\]]')
_LINE_BREAKS = re.compile(r"[\r\n]")


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a message is from and to, and the headers that identify it."""

    sender_name: str
    sender_email: str
    recipient_name: str
    recipient_email: str
    message_id: str
    date: datetime
    reply_to: str | None = None
    list_id: str | None = None
    """`Course Title <slug.domain>` (RFC 2919)."""
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    feedback_id: str | None = None
    """`course:lesson:dripcourse`: how a provider's complaint report (Gmail's Feedback Loop) groups
    this message; its last part is the stable sender id."""


def compose(envelope: Envelope, subject: str, text: str, html: str) -> bytes:
    _refuse_line_breaks(envelope, subject)
    headers = [
        _address_header("From", envelope.sender_name, envelope.sender_email),
        _address_header("To", envelope.recipient_name, envelope.recipient_email),
        _header("Subject", subject),
        _header("Date", format_datetime(envelope.date), _DATE),
        _header("Message-ID", envelope.message_id, _MESSAGE_ID),
    ]
    if envelope.reply_to:
        headers.append(_header("Reply-To", envelope.reply_to, _ADDR_SPEC))
    if envelope.list_id:
        headers.append(_header("List-Id", envelope.list_id))
    targets = [
        f"<{target}>"
        for target in (envelope.unsubscribe_url, envelope.unsubscribe_mailto)
        if target
    ]
    if targets:
        headers.append(_header("List-Unsubscribe", ", ".join(targets)))
    if envelope.unsubscribe_url:
        # RFC 8058: the https URL accepts a POST with this body and unsubscribes in one click.
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    if envelope.feedback_id:
        headers.append(_header("Feedback-ID", envelope.feedback_id))
    text_encoding, text_body = encode_body(text)
    html_encoding, html_body = encode_body(html)
    boundary = _boundary(text_body, html_body)
    headers.append(
        f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'
        f'\r\n--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {text_encoding}\r\n\r\n"
    )
    # The stdlib repeats MIME-Version in the part it builds for add_alternative(); kept so that the
    # output stays identical to the reference (RFC 2045 4 allows it in a body part).
    html_head = (
        f'\r\n--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {html_encoding}\r\nMIME-Version: 1.0\r\n\r\n"
    )
    return b"".join(
        (
            "".join(headers).encode("ascii"),
            text_body,
            html_head.encode("ascii"),
            html_body,
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        )
    )


def encode_body(content: str) -> tuple[str, bytes]:
    """The Content-Transfer-Encoding for `content` and the body in it, CRLF after every line.

    Lines are split as the stdlib splits them (CR, LF or CRLF) and the last one is always ended.
    """
    lines = content.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n"
    if len(body) <= MAX_LINE or max(map(len, lines)) <= MAX_LINE:
        return ("7bit" if body.isascii() else "8bit"), body
    return "quoted-printable", binascii.b2a_qp(body)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


# -- headers ----------------------------------------------------------------------------------


def _refuse_line_breaks(envelope: Envelope, subject: str) -> None:
    for value in (subject, *(getattr(envelope, field) for field in Envelope.__slots__)):
        if isinstance(value, str) and _LINE_BREAKS.search(value):
            raise ValueError("Header values may not contain linefeed or carriage return characters")


def _header(name: str, value: str, shape: re.Pattern[str] = _PRINTABLE) -> str:
    # "=?" could start an RFC 2047 encoded-word, which the stdlib would decode and write anew.
    if shape.fullmatch(value) and "=?" not in value and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n"
    return _folded(name, value)


def _address_header(name: str, display_name: str, addr_spec: str) -> str:
    if (
        _ADDR_SPEC.fullmatch(addr_spec)
        and (not display_name or _PRINTABLE.fullmatch(display_name))
        and "=?" not in display_name + addr_spec
    ):
        if not display_name:
            value = addr_spec
        elif _SPECIALS.search(display_name):
            quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
            value = f'"{quoted}" <{addr_spec}>'
        else:
            value = f"{display_name} <{addr_spec}>"
        if len(name) + 2 + len(value) <= MAX_LINE:
            return f"{name}: {value}\r\n"
    return _folded_address(name, display_name, addr_spec)


# The slow paths: the stdlib's header classes, exactly as EmailMessage uses them. Course-wide
# values (sender, list, subjects without a name in them) repeat, so they are cached.
@functools.lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> str:
    return str(POLICY.header_store_parse(name, value)[1].fold(policy=POLICY))


@functools.lru_cache(maxsize=1024)
def _folded_address(name: str, display_name: str, addr_spec: str) -> str:
    address = Address(display_name, addr_spec=addr_spec)
    return str(POLICY.header_store_parse(name, address)[1].fold(policy=POLICY))


def _boundary(*bodies: bytes) -> str:
    # The stdlib's form. RFC 2046 5.1.1: the delimiter must not occur in the bodies, so a body that
    # holds it (never a quoted-printable one: "==" cannot occur there) makes us draw again.
    while True:
        boundary = f"==============={random.randrange(sys.maxsize):019d}=="
        delimiter = f"--{boundary}".encode("ascii")
        if not any(delimiter in body for body in bodies):
            return boundary
