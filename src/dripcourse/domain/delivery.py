"""What the engine hands from one stage to the next, as plain data: an owed delivery claimed for
sending (`Job`), the finished message (`OutgoingMessage`) and what became of it (`DeliveryResult`).

The message and result types are the contract of the delivery backends (`backends.base` exports
them under their old names, for third-party backends).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery, as plain data for rendering and sending outside any transaction."""

    delivery_id: int
    kind: str
    enrollment_id: int
    course_id: int
    lesson_key: str | None
    message_id: str
    email: str
    name: str
    timezone: str
    due_at: datetime
    attempts: int
    """Attempts so far, this one included."""
    first_attempt_at: datetime
    lesson_id: int | None = None
    """The lesson's row (None for a confirmation or a completion email): the early-lesson link
    names it."""
    fields: Mapping[str, str] = field(default_factory=dict)
    """The custom field values the person gave for this course (`enrollments.fields`)."""


class Outcome(enum.StrEnum):
    SENT = "sent"
    """The receiving server accepted the message (or the backend stored it)."""
    TEMPORARY = "temporary"
    """Not delivered now; trying again later may work (4xx, connection refused, timeout)."""
    PERMANENT = "permanent"
    """Not delivered and never will be to this address: the server refused it (5xx on the
    recipient). The address is suppressed."""
    UNSENDABLE = "unsendable"
    """Not delivered, for a reason on our side that trying again will not mend: the message could
    not be built or signed, or the server cannot take this address (no SMTPUTF8). The delivery
    fails; the address is not at fault and is never suppressed for it."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One finished message: the envelope and the exact bytes that go on the wire."""

    key: str
    """The dispatcher's name for the message (a delivery id); echoed back in its result."""
    sender: str
    """Envelope sender (MAIL FROM)."""
    recipient: str
    """Envelope recipient (RCPT TO): one recipient per message, so each outcome is one person's."""
    data: bytes
    """The RFC 5322 message, CRLF line endings."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    key: str
    outcome: Outcome
    code: int | None = None
    """The SMTP reply code where there was one."""
    detail: str = ""
    """A short human-readable reason: the server's reply text or the error."""
    provider_id: str | None = None
    """The id a provider's relay gave the accepted message in its final reply (`250 Ok <id>`), as
    `provider_ids.from_reply` read it; its bounce and complaint events name the message by it."""
