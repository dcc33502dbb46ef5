"""The audit log: who changed what, to whom, and when.

An entry is written by the operation that makes the change, in the same transaction, so a change
and its entry are kept or lost together. Who acted is said by the shell that was used: an operator
of the dashboard, the command line (with the system user), or the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dripcourse.domain.validation import has_control_characters
from dripcourse.store.models import AuditEntry

MAX_ACTOR = 400
MAX_TARGET = 400
MAX_DETAIL = 2000


def operator_actor(email: str) -> str:
    return f"operator {email}"[:MAX_ACTOR]


def command_line_actor(user: str) -> str:
    return f"command line ({user or 'unknown user'})"[:MAX_ACTOR]


API_ACTOR = "API"

BOUNCE_ACTOR = "bounce mailbox"
"""Who the audit log says acted when a bounce or complaint read from the mailbox changed a person."""

SUBSCRIBER_ACTIONS = (
    "subscribed",
    "paused",
    "resumed",
    "unsubscribed",
    "lesson queued",
    "details changed",
    "fields changed",
    "delivery retried",
    "bounced",
    "complained",
    "early lesson asked",
)
"""What was done to subscribers, by operators and by the bounce mailbox: the entries a subscriber's
page shows (others, such as changes to operators, are for admins only)."""
FORGOTTEN = "a forgotten person"


def record(
    session: Session,
    now: datetime,
    actor: str,
    action: str,
    target: str,
    detail: str = "",
) -> AuditEntry:
    entry = AuditEntry(
        at=now,
        actor=_printable(actor)[:MAX_ACTOR],
        action=action,
        target=_printable(target)[:MAX_TARGET],
        detail=_printable(detail)[:MAX_DETAIL],
    )
    session.add(entry)
    return entry


def _printable(text: str) -> str:
    """The text with control characters written as escapes: an entry is one line, and a value
    with a line break in it cannot pass for a second entry."""
    if not has_control_characters(text):
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def entries(
    session: Session,
    *,
    target: str | None = None,
    actions: Sequence[str] | None = None,
    limit: int = 100,
) -> Sequence[AuditEntry]:
    """The newest entries first; only those about `target`, and of `actions`, when given."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if actions is not None:
        query = query.where(AuditEntry.action.in_(actions))
    return session.scalars(query).all()


def forget(session: Session, address: str) -> None:
    """A person is erased: the entries about their address keep what was done and when, but no
    longer say to whom (any spelling of the address)."""
    session.execute(
        update(AuditEntry)
        .where(func.lower(AuditEntry.target) == address.lower())
        .values(target=FORGOTTEN)
        .execution_options(synchronize_session=False)
    )
