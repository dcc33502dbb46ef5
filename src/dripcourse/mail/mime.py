"""Builds the finished message: `multipart/alternative` (text, then HTML) with the list headers.

Written out by hand: `email.message.EmailMessage` and its generator took 1-3 ms a lesson, most of a
dispatch pass; this takes about 50 us. Bodies and plain headers are byte for byte what `EmailMessage`
with `POLICY` writes for the same boundary; tests/unit/test_mime.py keeps the stdlib as reference and
reads every message back with its parser.

Headers are written from the values we are given, as literal text, and never parsed: the stdlib's
header classes parse what they are given, and so decode RFC 2047 encoded-words that a stranger typed
into a name (`=?utf-8?q?Ada=0D=0AReply-To:...?=` came out as a second header). Here:
- a value of printable ASCII with no "=?" that fits on a line is written as it is; lines may run to
  998 characters (RFC 5322 2.1.1), so a long unsubscribe URL stays one URL;
- any other text (non-ASCII, "=?" that a reader would decode, too long) becomes RFC 2047
  encoded-words of UTF-8 made by us, so a reader decodes exactly the text we were given, "=?" and
  all, folded at 76 columns;
- addresses must be ASCII dot-atoms (validation.normalise_email keeps them so); a Unicode domain
  from older data is written in its IDNA form; anything else raises `Unsendable`, as does a CR or
  LF in any value, a Message-ID of the wrong shape, or a URL too long for a line.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import idna

from dripcourse.domain.validation import has_control_characters
from dripcourse.errors import Unsendable

POLICY = email.policy.SMTP.clone(max_line_length=998)
MAX_LINE = 998
# RFC 2047 2: a line holding an encoded-word is at most 76 characters.
_FOLD_AT = 76

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_LOCAL_PART = re.compile(_DOT_ATOM)
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
# Printable ASCII with no "=?" (a reader would take it for the start of an encoded-word), and no
# space at either end or two in a row (readers fold them away).
_PLAIN = re.compile(r"(?!.*  )(?! )(?:[ -<>-~]|=(?!\?))*(?<! )")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")
# A token of a structured header (a list id, a Feedback-ID, a URL): printable ASCII, no space.
_TOKEN = re.compile(r"[!-~]+")
# RFC 5322 3.2.3 "specials": a display name holding one is written as a quoted-string.
_SPECIALS = re.compile(r'[()<>@,:;.\\"\[\]]')
_LINE_BREAKS = re.compile(r"[\r\n]")
# RFC 2047 5(3): the characters that may stand for themselves in a "Q" word inside a phrase; the
# same (stricter than needed) set serves unstructured text too.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
# Characters of encoded text in one encoded-word (64 in all): with "Subject: " before it, the
# line stays within RFC 2047's 76.
_WORD_TEXT = 52


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
    """An address alone, no display name."""
    list_id: str | None = None
    """`slug.domain` (RFC 2919); None: no List-Id header."""
    list_name: str = ""
    """The list's name in its List-Id header: the course title."""
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
        _text_header("Subject", subject),
        _token_header("Date", format_datetime(envelope.date), _DATE),
        _token_header("Message-ID", envelope.message_id, _MESSAGE_ID),
    ]
    if envelope.reply_to:
        headers.append(_address_header("Reply-To", "", envelope.reply_to))
    if envelope.list_id:
        headers.append(_list_id_header(envelope.list_name, envelope.list_id))
    targets = [
        target for target in (envelope.unsubscribe_url, envelope.unsubscribe_mailto) if target
    ]
    if targets:
        headers.append(_targets_header("List-Unsubscribe", targets))
    if envelope.unsubscribe_url:
        # RFC 8058: the https URL accepts a POST with this body and unsubscribes in one click.
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    if envelope.feedback_id:
        headers.append(_token_header("Feedback-ID", envelope.feedback_id))
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


# -- headers ----------------------------------------------------------------------------------


def _refuse_line_breaks(envelope: Envelope, subject: str) -> None:
    # Validation refuses these in what people type; this holds for every value, ours too.
    for value in (subject, *(getattr(envelope, field) for field in Envelope.__slots__)):
        if not isinstance(value, str):
            continue
        if _LINE_BREAKS.search(value):
            raise Unsendable("Header values may not contain linefeed or carriage return characters")
        if has_control_characters(value):
            raise Unsendable(f"Header values may not contain control characters: {value[:80]!r}")


def _text_header(name: str, value: str) -> str:
    """An unstructured header (RFC 5322 3.2.5): the text as it is, or encoded-words of it."""
    if not value:
        return f"{name}:\r\n"
    if _PLAIN.fullmatch(value) and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n"
    return _folded(name, encoded_words(value))


def _token_header(name: str, value: str, shape: re.Pattern[str] = _TOKEN) -> str:
    """A structured header whose value we made (a Message-ID, a list id): shape-checked."""
    if not shape.fullmatch(value) or len(name) + 2 + len(value) > MAX_LINE:
        raise Unsendable(f"{name} header value of the wrong shape: {value[:80]!r}")
    return f"{name}: {value}\r\n"


def _address_header(name: str, display_name: str, address: str) -> str:
    angle = f"<{ascii_address(address)}>"
    if not display_name:
        return _folded(name, [angle[1:-1]])
    phrase = _plain_phrase(display_name)
    if phrase is not None and len(name) + 3 + len(phrase) + len(angle) <= MAX_LINE:
        return f"{name}: {phrase} {angle}\r\n"
    # One encoded-word for the whole name where the line allows (validation.clean_name keeps
    # names short enough): readers disagree on the space between two adjacent encoded-words in a
    # phrase (RFC 2047 6.2 drops it; Python's address parser keeps one), so none is written.
    # RFC 2047's 75-character word is exceeded for that, as the stdlib did at this line length.
    whole = _encoded_word(display_name)
    words = [whole] if len(name) + 2 + len(whole) <= MAX_LINE else encoded_words(display_name)
    return _folded(name, [*words, angle])


def _list_id_header(list_name: str, list_id: str) -> str:
    """RFC 2919: `List-Id: phrase <id>`, the phrase written as a display name is."""
    if not _TOKEN.fullmatch(list_id) or "<" in list_id or ">" in list_id:
        raise Unsendable(f"List-Id of the wrong shape: {list_id[:80]!r}")
    if not list_name:
        return f"List-Id: <{list_id}>\r\n"
    phrase = _plain_phrase(list_name)
    if phrase is not None and len(phrase) + len(list_id) + 12 <= MAX_LINE:
        return f"List-Id: {phrase} <{list_id}>\r\n"
    return _folded("List-Id", [*encoded_words(list_name), f"<{list_id}>"])


def _plain_phrase(text: str) -> str | None:
    """`text` as an RFC 5322 phrase of plain ASCII (a quoted-string if it holds a special), or
    None if it needs encoded-words."""
    if not _PLAIN.fullmatch(text):
        return None
    if _SPECIALS.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _targets_header(name: str, targets: list[str]) -> str:
    """A list of URLs in angle brackets (RFC 2369): each whole on its line, folded between them."""
    for target in targets:
        if not _TOKEN.fullmatch(target) or len(name) + 4 + len(target) > MAX_LINE:
            raise Unsendable(f"{name} URL cannot be written on a header line: {target[:80]!r}")
    words = [f"<{target}>," for target in targets]
    words[-1] = words[-1][:-1]
    return _folded(name, words, width=MAX_LINE)


def _folded(name: str, words: list[str], width: int = _FOLD_AT) -> str:
    """`name: ` and the words, separated by spaces, a line break before a word that would pass
    `width` (folding white space, RFC 5322 3.2.2; between encoded-words it is not part of the text,
    RFC 2047 6.2)."""
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > width and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return "\r\n".join(lines) + "\r\n"


def encoded_words(text: str) -> list[str]:
    """RFC 2047 encoded-words of UTF-8 whose decoding is exactly `text`, each of at most 64
    characters. Each word holds whole characters (RFC 2047 5, 6.3): a character is never split."""
    return list(_encoded_words(text))


@functools.lru_cache(maxsize=1024)
def _encoded_words(text: str) -> tuple[str, ...]:
    # Course-wide values (sender, list, subjects without a name in them) repeat: cached.
    if _mostly_ascii(text):
        return tuple(_q_word(chunk) for chunk in _chunks(text, _q_length, _WORD_TEXT))
    # Base64 writes 4 characters for every 3 bytes.
    return tuple(_b_word(chunk) for chunk in _chunks(text, _utf8_length, _WORD_TEXT * 3 // 4))


def _encoded_word(text: str) -> str:
    """All of `text` in one encoded-word, however long: the shorter of "Q" and "B"."""
    q, b = _q_word(text), _b_word(text)
    return q if len(q) <= len(b) else b


def _mostly_ascii(text: str) -> bool:
    # "Q" keeps mostly-ASCII text readable (and SpamAssassin frowns on base64 for plain text);
    # "B" is shorter for the rest.
    return sum(not ch.isascii() for ch in text) * 4 <= len(text)


def _chunks(text: str, cost_of: Callable[[str], int], limit: int) -> Iterator[str]:
    """`text` cut into runs of whole characters, each costing at most `limit`."""
    start, used = 0, 0
    for at, ch in enumerate(text):
        cost = cost_of(ch)
        if at > start and used + cost > limit:
            yield text[start:at]
            start, used = at, 0
        used += cost
    yield text[start:]


def _q_length(ch: str) -> int:
    return 1 if ch == " " or ord(ch) in _Q_SAFE else 3 * _utf8_length(ch)


def _utf8_length(ch: str) -> int:
    return len(ch.encode("utf-8"))


def _q_word(text: str) -> str:
    encoded = "".join(
        "_" if byte == 0x20 else chr(byte) if byte in _Q_SAFE else f"={byte:02X}"
        for byte in text.encode("utf-8")
    )
    return f"=?utf-8?q?{encoded}?="


def _b_word(text: str) -> str:
    return f"=?utf-8?b?{binascii.b2a_base64(text.encode('utf-8'), newline=False).decode()}?="


def ascii_address(address: str) -> str:
    """The address as it goes on the envelope and in headers: a dot-atom local part and an ASCII
    domain (a Unicode one in its IDNA form, RFC 5890). `Unsendable` for anything else: a quoted or
    non-ASCII local part could only go over SMTPUTF8, which we do not use."""
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local):
        raise Unsendable(f"this address cannot be sent to without SMTPUTF8: {address[:80]!r}")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise Unsendable(f"the domain of {address[:80]!r} is not a valid name") from None
    if not _DOMAIN.fullmatch(domain) or len(local) + 1 + len(domain) > 254:
        raise Unsendable(f"not an address we can send to: {address[:80]!r}")
    return f"{local}@{domain}"


def _boundary(*bodies: bytes) -> str:
    # The stdlib's form. RFC 2046 5.1.1: the delimiter must not occur in the bodies, so a body that
    # holds it (never a quoted-printable one: "==" cannot occur there) makes us draw again.
    while True:
        boundary = f"==============={random.randrange(sys.maxsize):019d}=="
        delimiter = f"--{boundary}".encode("ascii")
        if not any(delimiter in body for body in bodies):
            return boundary
