"""Bounces and complaints read from a mailbox: which delivery failed, and what that means for the
address.

Reads RFC 3464 delivery status notifications (`multipart/report; report-type=delivery-status`) and
RFC 5965 feedback reports (`report-type=feedback-report`) from a Maildir folder or an mbox file:

- the delivery is found from the VERP address the report was sent to (`verp.py`: the report's
  Delivered-To, X-Original-To or To, the complaint's Original-Mail-From, or the Return-Path of the
  returned original). A VERP-shaped address whose tag does not verify is a forgery and is skipped.
  Only a report with no VERP address at all falls back to the returned original's Message-ID,
  which the ledger stores (random, so it cannot be guessed either);
- a hard bounce (status 5.x.x) or a complaint suppresses the address and ends its enrolments; a
  soft bounce (4.x.x, or action "delayed") counts toward `soft_bounce_limit`, and at the limit
  suppresses too;
- the bounce is noted on the delivery (`Delivery.bounce`, `bounced_at`) for the course report.

Every message read is remembered by its own Message-ID (`processed_bounces`), so reading the same
mailbox again counts nothing twice; a Maildir's handled messages are also moved to `cur/` and
marked seen. An mbox file is left as it is.
"""

from __future__ import annotations

import enum
import hashlib
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.config import Settings
from dripcourse.db import Database
from dripcourse.errors import BadInput
from dripcourse.models import (
    Delivery,
    EnrollmentStatus,
    ProcessedBounce,
    Subscriber,
    SuppressionReason,
)
from dripcourse.subscriptions import end_enrollment, suppress, suppression_of
from dripcourse.tokens import secret_key
from dripcourse.verp import BounceAddresses, looks_like_verp

_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
# RFC 5965 feedback types that mean "the recipient did not want this"; not-spam and auth-failure
# reports are not complaints about the sender.
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "To")


class Kind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class Report:
    """What one bounce or complaint says, before it is matched to a delivery."""

    kind: Kind
    addresses: list[str]
    """Where the report went, or the original's envelope sender: VERP addresses, with luck."""
    message_ids: list[str]
    """Message-IDs of the returned original."""
    detail: str


@dataclass
class BounceReport:
    """Counts of one run over a mailbox."""

    read: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    suppressed: int = 0
    """Addresses newly suppressed by this run."""
    not_bounces: int = 0
    bad_signature: int = 0
    unknown: int = 0
    """Reports naming no delivery that still exists."""
    already_processed: int = 0
    mbox: bool = False

    def summary(self) -> str:
        line = (
            f"read {self.read} message(s): {self.hard} hard bounce(s), {self.soft} soft "
            f"bounce(s), {self.complaints} complaint(s), {self.suppressed} address(es) suppressed; "
            f"skipped {self.not_bounces} not a bounce, {self.bad_signature} bad signature, "
            f"{self.unknown} unknown delivery, {self.already_processed} already processed"
        )
        if self.mbox:
            line += " (mbox left as it is: a message already processed is known by its Message-ID)"
        return line


def process_mailbox(
    database: Database, path: Path, now: datetime, settings: Settings
) -> BounceReport:
    """Read every new message of the Maildir folder or mbox file at `path` (one transaction)."""
    box = open_mailbox(path)
    result = BounceReport(mbox=isinstance(box, mailbox.mbox))
    handled: list[str] = []
    with database.transaction() as session:
        addresses = BounceAddresses(secret_key(session, settings.secret_key))
        for key, data in _unread(box):
            result.read += 1
            handled.append(key)
            _process(session, data, addresses, now, settings.soft_bounce_limit, result)
    if isinstance(box, mailbox.Maildir):
        # After the commit: a crash in between leaves them in new/, and the processed set
        # recognises them next time.
        for key in handled:
            message = box.get_message(key)
            message.set_subdir("cur")
            message.add_flag("S")
            box[key] = message
    return result


def open_mailbox(path: Path) -> mailbox.Maildir | mailbox.mbox:
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("new", "cur", "tmp")):
            raise BadInput(f"{path} is a folder but not a Maildir (it needs new/, cur/ and tmp/)")
        return mailbox.Maildir(path, factory=None, create=False)
    if path.is_file():
        with path.open("rb") as file:
            start = file.read(5)
        if start and start != b"From ":
            raise BadInput(f"{path} is not an mbox file (it does not start with 'From ')")
        return mailbox.mbox(path, factory=None, create=False)
    raise BadInput(f"no Maildir folder or mbox file at {path}")


def _unread(box: mailbox.Maildir | mailbox.mbox) -> Iterator[tuple[str, bytes]]:
    for key in box.keys():  # noqa: SIM118 - iterating a Mailbox yields messages, not keys
        if isinstance(box, mailbox.Maildir):
            message = box.get_message(key)
            if message.get_subdir() == "cur" and "S" in message.get_flags():
                continue  # handled by an earlier run (or read by a person)
        yield key, box.get_bytes(key)


def _process(
    session: Session,
    data: bytes,
    addresses: BounceAddresses,
    now: datetime,
    soft_limit: int,
    result: BounceReport,
) -> None:
    message = BytesParser(policy=compat32).parsebytes(data)
    key = (message.get("Message-ID") or "").strip() or (
        "sha256:" + hashlib.sha256(data).hexdigest()
    )
    key = key[:255]
    if session.scalar(select(ProcessedBounce.id).where(ProcessedBounce.message_key == key)):
        result.already_processed += 1
        return
    outcome = _outcome(session, message, addresses, now, soft_limit, result)
    session.add(ProcessedBounce(message_key=key, outcome=outcome, processed_at=now))
    session.flush()


def _outcome(
    session: Session,
    message: Message,
    addresses: BounceAddresses,
    now: datetime,
    soft_limit: int,
    result: BounceReport,
) -> str:
    report = read_report(message)
    if report is None:
        result.not_bounces += 1
        return "not-a-bounce"
    shaped = [address for address in report.addresses if looks_like_verp(address)]
    ids = [found for found in map(addresses.read, shaped) if found is not None]
    if shaped and not ids:
        result.bad_signature += 1
        return "bad-signature"
    delivery = session.get(Delivery, ids[0]) if ids else _by_message_id(session, report)
    if delivery is None:
        result.unknown += 1
        return "unknown"
    if report.kind == Kind.HARD:
        result.hard += 1
    elif report.kind == Kind.SOFT:
        result.soft += 1
    else:
        result.complaints += 1
    _record_on(delivery, report.kind, now)
    _apply(session, delivery.enrollment.subscriber, report, now, soft_limit, result)
    return str(report.kind)


def _record_on(delivery: Delivery, kind: Kind, now: datetime) -> None:
    """Note the bounce on the delivery, for the course report. A hard bounce outranks a soft one
    (a server that first delayed a message may give up on it later), never the other way round.
    A complaint is no bounce: that message did arrive."""
    if kind == Kind.COMPLAINT or delivery.bounce == Kind.HARD:
        return
    delivery.bounce, delivery.bounced_at = str(kind), now


def _by_message_id(session: Session, report: Report) -> Delivery | None:
    for message_id in report.message_ids:
        found = session.scalar(select(Delivery).where(Delivery.message_id == message_id))
        if found is not None:
            return found
    return None


def _apply(
    session: Session,
    subscriber: Subscriber,
    report: Report,
    now: datetime,
    soft_limit: int,
    result: BounceReport,
) -> None:
    detail = report.detail
    if report.kind == Kind.SOFT:
        subscriber.soft_bounces += 1
        if subscriber.soft_bounces < soft_limit:
            return
        detail = f"{subscriber.soft_bounces} soft bounces; the last: {detail}"
    reason = (
        SuppressionReason.COMPLAINT
        if report.kind == Kind.COMPLAINT
        else SuppressionReason.HARD_BOUNCE
    )
    if suppression_of(session, subscriber.email) is None:
        result.suppressed += 1
    suppress(session, subscriber.email, reason, now, detail=detail)
    for enrollment in subscriber.enrollments:
        if enrollment.status != EnrollmentStatus.COMPLETED:
            end_enrollment(session, enrollment, now)


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
    message_ids = [] if original is None else [str(original.get("Message-ID", "")).strip()]
    if original is not None and original.get("Return-Path"):
        addresses.extend(address for _, address in getaddresses([original["Return-Path"]]))
    if report_type == "delivery-status":
        found = _delivery_status(parts)
        if found is None:
            return None
        kind, detail = found
        return Report(kind, addresses, [m for m in message_ids if m], detail)
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
        return Report(Kind.COMPLAINT, addresses, [m for m in message_ids if m], detail)
    return None


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
                return HeaderParser(policy=compat32).parsestr(payload)
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
                return HeaderParser(policy=compat32).parsestr(text.decode("utf-8", "replace"))
    return None
