"""One message of the bounce mailbox, from raw bytes to a typed report, within limits.

Anything may arrive at the bounce address, so the bytes are read defensively: a message larger
than `Limits.max_bytes`, with more MIME parts than `Limits.max_parts` or nested deeper than
`Limits.max_depth`, or one the standard library's parser fails on in any way, becomes one
`UnreadableReport` with a reason, and is set aside by the caller. The part count is checked on the
raw bytes before parsing, because the parser recurses once per nesting level (a multipart nested
thousands deep raised RecursionError); the parsed tree is then measured again without recursion.

Header values are read as text (`_TextHeaders`): a raw 8-bit byte is decoded as UTF-8 (RFC 6532)
with replacement, never handed on as an `email.header.Header` object.

What a report says (RFC 3464 delivery status notifications, RFC 5965 feedback reports) is read
here; which delivery it names, and what follows, is decided in `bounces.py`.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import Compat32
from email.utils import getaddresses
from typing import Any

from dripcourse.errors import UnreadableReport

_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
# RFC 5965 feedback types that mean "the recipient did not want this"; not-spam and auth-failure
# reports are not complaints about the sender.
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "To")
# Every nested part needs a Content-Type header of its own (a multipart/digest adds at most one
# message/rfc822 level per part), so counting them bounds both parts and depth before parsing.
_CONTENT_TYPE_LINE = re.compile(rb"^[ \t]*content-type[ \t]*:", re.IGNORECASE | re.MULTILINE)
# RFC 5322 3.6.4 msg-id, printable ASCII only: what may be stored and looked up.
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ufffd]")


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5_000_000
    """A DSN carries at most one returned lesson (some tens of kilobytes)."""
    max_parts: int = 100
    max_depth: int = 12


DEFAULT_LIMITS = Limits()


class Kind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class Report:
    """What one bounce or complaint says, before it is matched to a delivery: read from a mailbox
    message here, or from a provider's event (`app/providers/`)."""

    kind: Kind
    addresses: list[str]
    """Where the report went, or the original's envelope sender: VERP addresses, with luck."""
    message_ids: list[str]
    """Message-IDs of the returned original (well-formed ones only)."""
    detail: str
    provider_id: str | None = None
    """The provider's id of the message (`Delivery.provider_id`), when a provider's event names
    it by that rather than by our Message-ID."""
    recipient: str | None = None
    """The address a provider's verified event says bounced or complained, normalised
    (`validation.normalise_email`): the last resort when no id matches (`bounces.apply_report`).
    Never read from a mailbox message, whose addresses anybody could write."""


@dataclass(frozen=True)
class ReadMessage:
    """One message of the mailbox, read: its key in the processed set, and its report if any."""

    key: str
    report: Report | None


class _TextHeaders(Compat32):
    """compat32, except that a header holding raw 8-bit bytes is returned as text (decoded as
    UTF-8 with replacement) instead of an `email.header.Header`, which has no `str` methods and
    crashed both our code and the standard library's own `get_content_type`."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        return text_of(value)


_POLICY = _TextHeaders()


def text_of(value: str) -> str:
    """A header value as the parser keeps it (8-bit bytes as surrogates), as plain text."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def read_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ReadMessage:
    """The report in `data`; raises `UnreadableReport` for anything that cannot be read safely."""
    if len(data) > limits.max_bytes:
        raise UnreadableReport(f"larger than {limits.max_bytes} bytes")
    if not data.strip():
        raise UnreadableReport("empty")
    if len(_CONTENT_TYPE_LINE.findall(data)) > limits.max_parts:
        raise UnreadableReport(f"more than {limits.max_parts} MIME parts")
    try:
        message = BytesParser(policy=_POLICY).parsebytes(data)
        _measure(message, limits)
        if message.defects:
            # The report's own structure is damaged (truncated, no boundary): a real MTA does not
            # send that. Defects inside the returned original are common and tolerated.
            raise UnreadableReport(f"broken MIME ({type(message.defects[0]).__name__})")
        return ReadMessage(key=message_key(message, data), report=read_report(message))
    except UnreadableReport:
        raise
    except Exception as exc:
        raise UnreadableReport(f"the mail parser failed ({type(exc).__name__})") from exc


def _measure(message: Message, limits: Limits) -> None:
    """Parts and depth of the parsed tree, counted without recursion."""
    pending: list[tuple[Message, int]] = [(message, 0)]
    parts = 0
    while pending:
        part, depth = pending.pop()
        parts += 1
        if parts > limits.max_parts:
            raise UnreadableReport(f"more than {limits.max_parts} MIME parts")
        if depth > limits.max_depth:
            raise UnreadableReport(f"MIME nested deeper than {limits.max_depth}")
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def message_key(message: Message, data: bytes) -> str:
    """The message's own Message-ID if well-formed, else the SHA-256 of its bytes."""
    own = str(message.get("Message-ID") or "").strip()
    if _MESSAGE_ID.fullmatch(own):
        return own
    return bytes_key(data)


def message_id_of(value: object) -> str | None:
    """A Message-ID given by a stranger (a header, a provider's JSON), as the ledger stores it
    (`<...>`), if well-formed; providers give it with or without its angle brackets."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    return value if _MESSAGE_ID.fullmatch(value) else None


def bytes_key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _clean(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())


def read_report(message: Message) -> Report | None:
    """The bounce or complaint in `message`, or None if it is neither."""
    if message.get_content_type() != "multipart/report":
        return None
    report_type = str(message.get_param("report-type") or "").lower()
    parts = [part for part in message.walk() if part is not message]
    addresses = [
        address
        for header in _ADDRESS_HEADERS
        for _, address in getaddresses(message.get_all(header, []))
        if address
    ]
    original = _original_headers(parts)
    own_id = "" if original is None else str(original.get("Message-ID", "")).strip()
    message_ids = [own_id] if _MESSAGE_ID.fullmatch(own_id) else []
    if original is not None and original.get("Return-Path"):
        addresses.extend(address for _, address in getaddresses([original["Return-Path"]]))
    if report_type == "delivery-status":
        found = _delivery_status(parts)
        if found is None:
            return None
        kind, detail = found
        return Report(kind, _addresses(addresses), message_ids, _clean(detail))
    if report_type == "feedback-report":
        fields = _feedback_fields(parts)
        if fields is None:
            return None
        if str(fields.get("Feedback-Type", "")).strip().lower() not in _COMPLAINT_TYPES:
            return None
        addresses.extend(
            address for _, address in getaddresses(fields.get_all("Original-Mail-From", []))
        )
        detail = f"complaint ({str(fields.get('Feedback-Type')).strip()})"
        return Report(Kind.COMPLAINT, _addresses(addresses), message_ids, _clean(detail))
    return None


def _addresses(found: list[str]) -> list[str]:
    return [address for address in found if address and not _CONTROL.search(address)]


def _delivery_status(parts: list[Message]) -> tuple[Kind, str] | None:
    """The worst failure among the per-recipient fields (RFC 3464 2.3), with its status."""
    for part in parts:
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        worst: tuple[Kind, str] | None = None
        for block in blocks:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            if not action or action in ("delivered", "relayed", "expanded"):
                continue
            status = _STATUS.search(str(block.get("Status", "")))
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            detail = f"{status.group(0) if status else action} {diagnostic}".strip()[:500]
            if status is not None and status.group(1) == "5":
                return Kind.HARD, detail
            if action in ("failed", "delayed") and worst is None:
                worst = (Kind.HARD if status is None and action == "failed" else Kind.SOFT, detail)
        return worst
    return None


def _feedback_fields(parts: list[Message]) -> Message | None:
    for part in parts:
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return HeaderParser(policy=_POLICY).parsestr(payload)
    return None


def _original_headers(parts: list[Message]) -> Message | None:
    """The headers of the returned original (RFC 3464 2: message/rfc822 or text/rfc822-headers)."""
    for part in parts:
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if part.get_content_type() == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                return HeaderParser(policy=_POLICY).parsestr(text.decode("utf-8", "replace"))
    return None
