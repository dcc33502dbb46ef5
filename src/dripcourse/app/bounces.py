"""Bounces and complaints read from a mailbox: which delivery failed, and what that means for the
address.

Reads RFC 3464 delivery status notifications and RFC 5965 feedback reports from a Maildir folder or
an mbox file (the bytes are read in `bouncereports.py`, within limits):

- the delivery is found from the VERP address the report was sent to (`verp.py`: the report's
  Delivered-To, X-Original-To or To, the complaint's Original-Mail-From, or the Return-Path of the
  returned original). A VERP-shaped address whose tag does not verify is a forgery and is skipped.
  Only a report with no VERP address at all falls back to the returned original's Message-ID,
  which the ledger stores (random, so it cannot be guessed either);
- a hard bounce (status 5.x.x) or a complaint suppresses the address and ends its enrolments; a
  soft bounce (4.x.x, or action "delayed") counts toward `soft_bounce_limit`, and at the limit
  suppresses too;
- the bounce is noted on the delivery (`Delivery.bounce`, `bounced_at`) for the course report.

Each message is one unit of work (its own transaction), so one message that cannot be read never
stops the others: it is counted as quarantined, moved to `quarantine/` beside a Maildir's `new/`
and `cur/` (never read again), or skipped in an mbox. A database that fails stops the run: that is
not the message's fault, and the message stays where it is for the next run.

Every message read is remembered by its own Message-ID (`processed_bounces`, or the SHA-256 of its
bytes), so reading the same mailbox again counts nothing twice; a Maildir's handled messages are
also moved to `cur/` and marked seen. An mbox file is left as it is.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.app.bouncereports import (
    DEFAULT_LIMITS,
    Kind,
    Limits,
    ReadMessage,
    Report,
    bytes_key,
    read_message,
)
from dripcourse.app.subscriptions import end_enrollment
from dripcourse.app.webhooks import announce
from dripcourse.config import Settings
from dripcourse.domain.validation import mailbox_key
from dripcourse.domain.webhooks import EventType
from dripcourse.errors import BadInput, DripcourseError, UnreadableReport
from dripcourse.mail.verp import BounceAddresses, looks_like_verp
from dripcourse.store.db import Database
from dripcourse.store.models import (
    Delivery,
    Enrollment,
    EnrollmentStatus,
    ProcessedBounce,
    Subscriber,
    SuppressionReason,
)
from dripcourse.store.privatefiles import make_private_dir
from dripcourse.store.queries import secret_key, suppress, suppression_of
from dripcourse.telemetry.metrics import count_bounce

QUARANTINE = "quarantine"
RECIPIENT_LOOKBACK = timedelta(days=30)
"""How far back a provider's event matched only by its recipient's address looks for the delivery
it is about. A bounce comes within hours or days of the message; a complaint may come weeks later
(a reader marks an old lesson as spam). Past a month, the news is about mail we no longer send."""


class BounceRunStopped(DripcourseError):
    """The database failed while a message was applied: the run stops, the message stays."""


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
    quarantined: int = 0
    """Messages that could not be read safely (`bouncereports.UnreadableReport`)."""
    mbox: bool = False

    def summary(self) -> str:
        line = (
            f"read {self.read} message(s): {self.hard} hard bounce(s), {self.soft} soft "
            f"bounce(s), {self.complaints} complaint(s), {self.suppressed} address(es) suppressed; "
            f"skipped {self.not_bounces} not a bounce, {self.bad_signature} bad signature, "
            f"{self.unknown} unknown delivery, {self.already_processed} already processed, "
            f"{self.quarantined} quarantined"
        )
        if self.mbox:
            line += " (mbox left as it is: a message already processed is known by its Message-ID)"
        return line


@dataclass(frozen=True)
class _Unread:
    """One message not handled yet: its name, and where a Maildir keeps it or its mbox key."""

    key: str
    path: Path | None
    mbox_key: str = ""


def process_mailbox(
    database: Database,
    path: Path,
    now: datetime,
    settings: Settings,
    limits: Limits = DEFAULT_LIMITS,
) -> BounceReport:
    """Read every new message of the Maildir folder or mbox file at `path`, one transaction each."""
    box = open_mailbox(path)
    result = BounceReport(mbox=isinstance(box, mailbox.mbox))
    with database.transaction() as session:
        addresses = BounceAddresses(secret_key(session, settings.secret_key))
    for unread in _unread(box, path):
        result.read += 1
        data = _bytes(box, unread, limits)
        try:
            read: ReadMessage | UnreadableReport = read_message(data, limits)
        except UnreadableReport as exc:
            read = exc
        try:
            with database.transaction() as session:
                outcome = _apply_message(
                    session, read, data, addresses, now, settings.soft_bounce_limit, result
                )
        except OperationalError as exc:
            raise BounceRunStopped(
                f"the database failed while applying message {unread.key} ({exc.orig}); the run "
                f"stopped after {result.read - 1} message(s), and this one stays for the next run "
                "(the message is not at fault)"
            ) from exc
        if unread.path is not None:
            _move(unread.path, path, outcome)
    return result


def _apply_message(
    session: Session,
    read: ReadMessage | UnreadableReport,
    data: bytes,
    addresses: BounceAddresses,
    now: datetime,
    soft_limit: int,
    result: BounceReport,
) -> str:
    key = bytes_key(data) if isinstance(read, UnreadableReport) else read.key
    if session.scalar(select(ProcessedBounce.id).where(ProcessedBounce.message_key == key)):
        result.already_processed += 1
        return "already-processed"
    if isinstance(read, UnreadableReport):
        result.quarantined += 1
        outcome = "unreadable"
    else:
        outcome = _outcome(session, read.report, addresses, now, soft_limit, result)
    session.add(ProcessedBounce(message_key=key, outcome=outcome, processed_at=now))
    session.flush()
    return outcome


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


def _unread(box: mailbox.Maildir | mailbox.mbox, path: Path) -> Iterator[_Unread]:
    if isinstance(box, mailbox.mbox):
        for key in box.keys():  # noqa: SIM118 - iterating a Mailbox yields messages, not keys
            yield _Unread(f"#{key}", None, key)
        return
    # A Maildir is listed here rather than through `mailbox.Maildir`, whose `box[key] = message`
    # rewrites the whole file to change its flags; a rename is enough (and is atomic).
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(path / sub)):
            if name.startswith("."):
                continue
            if sub == "cur" and "S" in _flags(name):
                continue  # handled by an earlier run (or read by a person)
            yield _Unread(name, path / sub / name)


def _flags(name: str) -> str:
    _, _, info = name.partition(":")
    return info[2:] if info.startswith("2,") else ""


def _bytes(box: mailbox.Maildir | mailbox.mbox, unread: _Unread, limits: Limits) -> bytes:
    """At most one byte more than the limit: enough to know a message is too large."""
    if unread.path is not None:
        with unread.path.open("rb") as file:
            return file.read(limits.max_bytes + 1)
    assert isinstance(box, mailbox.mbox)
    part = box.get_file(unread.mbox_key)
    try:
        return part.read(limits.max_bytes + 1)
    finally:
        part.close()


def _move(file: Path, folder: Path, outcome: str) -> None:
    """After the commit: a crash in between leaves the message where it was, and the processed set
    recognises it next time. An unreadable one goes to `quarantine/` (0700: it may hold anything)."""
    if outcome == "unreadable":
        target = folder / QUARANTINE
        make_private_dir(target)
        file.rename(target / file.name)
        return
    uniq = file.name.partition(":")[0]
    flags = "".join(sorted(set(_flags(file.name)) | {"S"}))
    file.rename(folder / "cur" / f"{uniq}:2,{flags}")


def apply_report(
    session: Session, report: Report, now: datetime, soft_limit: int, result: BounceReport
) -> str:
    """A provider's bounce or complaint (`app/provider_events.py`), applied exactly as one read
    from the mailbox: it names its message by Message-ID or by the provider's id, never by VERP;
    failing both, by its recipient's address (`_by_recipient`): the event is authenticated, so
    the address is the provider's word."""
    return _outcome(session, report, None, now, soft_limit, result, by_recipient=True)


def _outcome(
    session: Session,
    report: Report | None,
    addresses: BounceAddresses | None,
    now: datetime,
    soft_limit: int,
    result: BounceReport,
    by_recipient: bool = False,
) -> str:
    """The one place where a report, from a mailbox or a provider, finds its delivery and has its
    effect: suppression, the soft-bounce count, the note on the delivery and the audit entry.
    `by_recipient` (a provider's event only) allows the last resort of `_by_recipient`."""
    if report is None:
        result.not_bounces += 1
        return "not-a-bounce"
    shaped = [address for address in report.addresses if looks_like_verp(address)]
    ids = [found for found in map(addresses.read, shaped) if found is not None] if addresses else []
    if shaped and not ids:
        result.bad_signature += 1
        return "bad-signature"
    delivery = session.get(Delivery, ids[0]) if ids else _by_message_id(session, report)
    if delivery is None and by_recipient:
        delivery = _by_recipient(session, report, now)
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
    count_bounce(session, str(report.kind))
    _audit(session, delivery, report, now)
    _announce(session, delivery, report, now)
    _apply(session, delivery.enrollment.subscriber, report, now, soft_limit, result)
    return str(report.kind)


def _audit(session: Session, delivery: Delivery, report: Report, now: datetime) -> None:
    """The bounce or complaint in the audit log, so that the person's page shows it; in the
    message's own transaction, like every other change."""
    lesson = (
        f"lesson {delivery.lesson.position} ({delivery.lesson.key})"
        if delivery.lesson
        else delivery.kind
    )
    what = "complaint" if report.kind == Kind.COMPLAINT else f"{report.kind} bounce"
    # Not the server's words: they quote the address, which must go when the person is forgotten
    # (they stay on the delivery and the suppression, which forgetting erases).
    detail = f"{what} about {lesson} of {delivery.enrollment.course.slug}"
    action = "complained" if report.kind == Kind.COMPLAINT else "bounced"
    person = delivery.enrollment.subscriber.email
    audit.record(session, now, audit.BOUNCE_ACTOR, action, person, detail)


def _announce(session: Session, delivery: Delivery, report: Report, now: datetime) -> None:
    """`bounce.received` or `complaint.received` into the webhook outbox, where every report whose
    kind is known passes (a mailbox's, and a provider's)."""
    lesson = delivery.lesson
    more: dict[str, object] = {
        "message": delivery.kind,
        "lesson": lesson.key if lesson else None,
        "position": lesson.position if lesson else None,
    }
    if report.kind == Kind.COMPLAINT:
        announce(session, EventType.COMPLAINT_RECEIVED, delivery.enrollment, now, **more)
    else:
        more["bounce"] = str(report.kind)
        announce(session, EventType.BOUNCE_RECEIVED, delivery.enrollment, now, **more)


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
    if report.provider_id:
        return session.scalar(
            select(Delivery).where(Delivery.provider_id == report.provider_id).limit(1)
        )
    return None


def _by_recipient(session: Session, report: Report, now: datetime) -> Delivery | None:
    """The latest delivery sent to the report's recipient (by mailbox key, so in any spelling)
    within `RECIPIENT_LOOKBACK`: for a provider whose event names no id we recorded (Postmark's
    relay may not say its MessageID)."""
    if not report.recipient:
        return None
    return session.scalar(
        select(Delivery)
        .join(Delivery.enrollment)
        .join(Enrollment.subscriber)
        .where(
            Subscriber.email_key == mailbox_key(report.recipient),
            Delivery.sent_at.is_not(None),
            Delivery.sent_at >= now - RECIPIENT_LOOKBACK,
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    )


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
