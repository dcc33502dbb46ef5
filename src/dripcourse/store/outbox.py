"""The webhook outbox: events written in the transaction of the change they tell of, one row per
event and endpoint that wants it (`webhook_models.WebhookMessage`), for `sending/webhooks` to
deliver. A change rolled back takes its events with it; a change committed has them stored.

`emit` is the one function the operations and the engine call. Without an endpoint it writes
nothing at all: one read of the endpoints per transaction (kept in `session.info`) is the whole
cost for those who use no webhooks. With endpoints, a batch of events is one INSERT per
`ROWS_PER_STATEMENT` rows, whatever the number of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from dripcourse.domain.webhooks import Event, body_of, new_message_id, wants, without_address
from dripcourse.store.queries import chunks
from dripcourse.store.webhook_models import (
    WebhookEndpoint,
    WebhookMessage,
    WebhookOrigin,
    WebhookStatus,
)

_LISTENERS = "dripcourse_webhook_listeners"


@dataclass(frozen=True, slots=True)
class Listener:
    endpoint_id: int
    events: str


def listeners(session: Session) -> list[Listener]:
    """The endpoints, read once per transaction."""
    known: list[Listener] | None = session.info.get(_LISTENERS)
    if known is None:
        known = [
            Listener(endpoint_id, events)
            for endpoint_id, events in session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.events).order_by(WebhookEndpoint.id)
            )
        ]
        session.info[_LISTENERS] = known
    return known


def forget_listeners(session: Session) -> None:
    """After an endpoint is added or removed in this transaction: read them again."""
    session.info.pop(_LISTENERS, None)


def wanted(session: Session, event_types: Iterable[str]) -> bool:
    """Whether any endpoint wants one of these types: the engine asks before it builds events."""
    types = list(event_types)
    return any(wants(each.events, kind) for each in listeners(session) for kind in types)


def emit(session: Session, events: Sequence[Event], now: datetime) -> int:
    """Store these events for every endpoint that wants them; the number of rows written."""
    found = listeners(session)
    if not found or not events:
        return 0
    rows: list[dict[str, Any]] = []
    for event in events:
        message_id, body = new_message_id(), body_of(event, now)
        rows.extend(
            {
                "endpoint_id": listener.endpoint_id,
                "message_id": message_id,
                "event_type": str(event.type),
                "subscriber_id": event.subscriber_id,
                "body": body,
                "created_at": now,
                "status": WebhookStatus.PENDING,
                "next_attempt_at": now,
                "attempts": 0,
            }
            for listener in found
            if wants(listener.events, event.type)
        )
    for group in chunks(rows):
        session.execute(insert(WebhookMessage), list(group))
    return len(rows)


def erase_address(session: Session, subscriber_id: int) -> int:
    """Take the address out of every stored event of this person, delivered or not: they asked to
    be forgotten, and what has not gone yet goes without it. Returns the rows changed."""
    changed = 0
    for message in session.scalars(
        select(WebhookMessage).where(WebhookMessage.subscriber_id == subscriber_id)
    ):
        body = without_address(message.body)
        if body != message.body:
            message.body = body
            changed += 1
    return changed


def configured_differ(session: Session, urls: Sequence[str], secret: str) -> bool:
    """Whether the stored endpoints of the settings differ from these (a read: most commands
    find them in step and take no write lock)."""
    stored = {
        url: secret
        for url, secret in session.execute(
            select(WebhookEndpoint.url, WebhookEndpoint.secret).where(
                WebhookEndpoint.origin == WebhookOrigin.SETTINGS
            )
        )
    }
    commanded = set(
        session.scalars(
            select(WebhookEndpoint.url).where(WebhookEndpoint.origin == WebhookOrigin.COMMAND)
        )
    )
    return stored != {url: secret for url in urls if url not in commanded}


def sync_configured(session: Session, urls: Sequence[str], secret: str, now: datetime) -> None:
    """Keep the endpoints of the settings (`webhook_urls`) in step with them: new ones added, the
    secret updated, those no longer listed removed with what they had not received. An endpoint
    added by command with the same URL stays as it was added."""
    present = {
        endpoint.url: endpoint
        for endpoint in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    }
    for url in urls:
        endpoint = present.get(url)
        if endpoint is None:
            session.add(
                WebhookEndpoint(
                    url=url, secret=secret, events="", origin=WebhookOrigin.SETTINGS, created_at=now
                )
            )
        elif endpoint.origin == WebhookOrigin.SETTINGS and endpoint.secret != secret:
            endpoint.secret = secret
    gone = [
        endpoint.id
        for url, endpoint in present.items()
        if endpoint.origin == WebhookOrigin.SETTINGS and url not in urls
    ]
    if gone:
        session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id.in_(gone)))
    session.flush()
    forget_listeners(session)
