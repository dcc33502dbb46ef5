"""Outgoing webhooks, the operator's side: the endpoints added by command (`webhooks add`,
`list`, `remove`), the recent failures, the test event, and `announce`, how the operations put
an event about one enrolment into the outbox (`store/outbox`) in their own transaction.

The endpoints of the settings (`webhook_urls`) are kept in step by `keep_configured`, called by
the command line when it opens the database; they are listed but not removed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.domain.webhooks import (
    Event,
    EventType,
    check_events,
    check_url,
    enrolment_data,
    new_secret,
    secret_key,
)
from dripcourse.errors import BadInput, Conflict, NotFound
from dripcourse.store.db import Database
from dripcourse.store.models import Course, Enrollment
from dripcourse.store.outbox import (
    configured_differ,
    emit,
    forget_listeners,
    sync_configured,
    wanted,
)
from dripcourse.store.webhook_models import WebhookEndpoint, WebhookMessage, WebhookOrigin

RECENT_FAILURES = 50


def announce(
    session: Session, event: EventType, enrollment: Enrollment, now: datetime, **more: Any
) -> None:
    """An event about this enrolment into the webhook outbox (nothing without an endpoint)."""
    data = enrolment_data(
        enrollment.subscriber_id,
        enrollment.subscriber.email,
        enrollment.id,
        enrollment.course.slug,
        **more,
    )
    emit(session, [Event(event, enrollment.subscriber_id, data)], now)


def announce_imported(
    session: Session,
    course: Course,
    emails: list[str],
    ids: dict[str, int],
    confirmed: bool,
    now: datetime,
) -> None:
    """`subscriber.created` (and `subscriber.confirmed` for a confirmed import) for each person
    enrolled by this chunk: one read and one INSERT, none without a webhook endpoint."""
    kinds = [EventType.SUBSCRIBER_CREATED] + ([EventType.SUBSCRIBER_CONFIRMED] if confirmed else [])
    if not wanted(session, kinds):
        return
    by_subscriber = {
        subscriber_id: enrollment_id
        for subscriber_id, enrollment_id in session.execute(
            select(Enrollment.subscriber_id, Enrollment.id).where(
                Enrollment.course_id == course.id, Enrollment.subscriber_id.in_(ids.values())
            )
        )
    }
    events = [
        Event(
            kind,
            ids[email],
            enrolment_data(ids[email], email, by_subscriber[ids[email]], course.slug),
        )
        for email in emails
        for kind in kinds
    ]
    emit(session, events, now)


def announce_forgotten(session: Session, subscriber_id: int, now: datetime) -> None:
    """`subscriber.forgotten`: ids only, never the address (the person asked to be forgotten)."""
    emit(
        session,
        [Event(EventType.SUBSCRIBER_FORGOTTEN, subscriber_id, {"subscriber_id": subscriber_id})],
        now,
    )


def keep_configured(database: Database, urls: Sequence[str], secret: str, now: datetime) -> None:
    """The endpoints of the settings stored as such, if they are not already (a read, and a write
    only when the settings changed)."""
    with database.read() as session:
        if not configured_differ(session, urls, secret):
            return
    with database.transaction() as session:
        sync_configured(session, urls, secret, now)


@dataclass(frozen=True)
class Added:
    endpoint: WebhookEndpoint
    secret: str


def add_endpoint(
    session: Session, url: str, events: Sequence[str], now: datetime, secret: str | None = None
) -> Added:
    """A new endpoint; its secret made now unless one is given (then checked)."""
    url = check_url(url)
    wanted = check_events(events)
    secret = secret if secret is not None else new_secret()
    secret_key(secret)
    if session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.url == url)) is not None:
        raise Conflict(f"{url} is already a webhook endpoint")
    endpoint = WebhookEndpoint(
        url=url,
        secret=secret,
        events=",".join(wanted),
        origin=WebhookOrigin.COMMAND,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    forget_listeners(session)
    return Added(endpoint, secret)


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def remove_endpoint(session: Session, url: str) -> None:
    """Remove an endpoint added by command, with what it had not received."""
    endpoint = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.url == url.strip()))
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {url.strip()!r}")
    if endpoint.origin == WebhookOrigin.SETTINGS:
        raise BadInput(f"{endpoint.url} comes from the setting webhook_urls; remove it there")
    session.delete(endpoint)
    session.flush()
    forget_listeners(session)


@dataclass(frozen=True)
class Failure:
    url: str
    event_type: str
    message_id: str
    status: str
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    reason: str


def recent_failures(session: Session, limit: int = RECENT_FAILURES) -> list[Failure]:
    """The latest failed attempts, newest first: given up on, or waiting for their next try."""
    rows = session.execute(
        select(WebhookMessage, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookMessage.endpoint_id == WebhookEndpoint.id)
        .where(WebhookMessage.last_error.is_not(None), WebhookMessage.delivered_at.is_(None))
        .order_by(WebhookMessage.last_attempt_at.desc(), WebhookMessage.id.desc())
        .limit(limit)
    )
    return [
        Failure(
            url=url,
            event_type=message.event_type,
            message_id=message.message_id,
            status=message.status,
            attempts=message.attempts,
            last_attempt_at=message.last_attempt_at,
            next_attempt_at=message.next_attempt_at if message.status == "pending" else None,
            reason=message.last_error or "",
        )
        for message, url in rows
    ]


def endpoint_secret(session: Session, url: str) -> str:
    secret = session.scalar(select(WebhookEndpoint.secret).where(WebhookEndpoint.url == url))
    if secret is None:
        raise NotFound(f"no webhook endpoint {url!r}; add it with `dripcourse webhooks add`")
    return secret
