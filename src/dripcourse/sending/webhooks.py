"""Delivering the webhook outbox (`store/outbox`): claim, POST, record, as the dispatcher does for
mail, run at the end of every dispatch pass.

Three steps, no transaction open across the network: `claim` leases a batch (one short
transaction; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never hold one message at
once), `post` sends each outside any transaction, `record_attempts` writes what each endpoint
answered (one short transaction, only for what this worker still leases).

In order per person and endpoint: a message is not claimed while an earlier one of the same
subscriber for the same endpoint is still undelivered (pending or being sent); one given up on
no longer holds the others back. Events of nobody (no subscriber) go in any order.

A receiver is a stranger: short timeouts, no redirect followed, at most `MAX_ANSWER` bytes of its
answer read, for at most `ATTEMPT_DEADLINE` seconds, anything but a 2xx is a failure, and only a
short printable excerpt of its answer is stored (`domain.webhooks.failure_reason`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Table, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from dripcourse.clock import Clock
from dripcourse.domain.webhooks import (
    TEST_EVENT,
    failure_reason,
    headers_for,
    new_message_id,
    next_attempt,
    test_body,
)
from dripcourse.store.db import Database
from dripcourse.store.webhook_models import (
    UNDELIVERED,
    WebhookEndpoint,
    WebhookMessage,
    WebhookStatus,
)
from dripcourse.telemetry.metrics import count_webhook_deliveries

log = logging.getLogger(__name__)

MAX_ANSWER = 4096
"""Bytes of a receiver's answer read at most; the rest is never downloaded."""
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ATTEMPT_DEADLINE = 15.0
"""Seconds an attempt may spend reading the receiver's answer: httpx's timeouts bound each read,
not their sum, so a receiver sending a byte every few seconds would otherwise hold the dispatch
pass for hours. Measured on the monotonic clock, as httpx's own timeouts are: it bounds the wait
and decides nothing about the schedule (`now` does)."""
USER_AGENT = "dripcourse-webhooks"
BATCH = 100
LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message leased for one attempt."""

    id: int
    message_id: str
    event_type: str
    url: str
    secret: str
    body: str
    attempts: int
    """Attempts so far, this one included."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to: delivered (a 2xx), or the reason it was not."""

    message: Claimed
    delivered: bool
    status: int | None
    reason: str | None


@dataclass
class WebhookReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def claim(
    session: Session, now: datetime, worker: str, limit: int, lease: timedelta
) -> list[Claimed]:
    """Lease up to `limit` messages that are due (or whose lease expired), none of them behind an
    earlier undelivered one of the same person and endpoint:

        WITH claimable AS (
            SELECT m.id FROM webhook_messages m
            WHERE ((m.status = 'pending' AND m.next_attempt_at <= :now)
                   OR (m.status = 'sending' AND m.lease_expires_at <= :now))
              AND NOT EXISTS (SELECT 1 FROM webhook_messages e WHERE e.endpoint_id = m.endpoint_id
                              AND e.subscriber_id = m.subscriber_id AND e.id < m.id
                              AND e.status IN ('pending', 'sending'))
            ORDER BY m.id LIMIT :limit
            [FOR UPDATE OF m SKIP LOCKED]               -- PostgreSQL: workers never wait
        )
        UPDATE webhook_messages SET status = 'sending', lease_owner = :worker, ...
        WHERE id IN (SELECT id FROM claimable) RETURNING id

    On SQLite every writer holds the database's write lock (`BEGIN IMMEDIATE`): claims never
    overlap there.
    """
    message = WebhookMessage
    earlier = aliased(WebhookMessage)
    behind = exists().where(
        earlier.endpoint_id == message.endpoint_id,
        earlier.subscriber_id == message.subscriber_id,
        earlier.id < message.id,
        earlier.status.in_(UNDELIVERED),
    )
    claimable = (
        select(message.id)
        .where(
            or_(
                and_(message.status == WebhookStatus.PENDING, message.next_attempt_at <= now),
                and_(message.status == WebhookStatus.SENDING, message.lease_expires_at <= now),
            ),
            ~behind,
        )
        .order_by(message.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        claimable = claimable.with_for_update(skip_locked=True, of=message)
    chosen = claimable.cte("claimable")
    ids = list(
        session.scalars(
            update(message)
            .where(message.id.in_(select(chosen.c.id)))
            .values(
                status=WebhookStatus.SENDING,
                lease_owner=worker,
                lease_expires_at=now + lease,
                attempts=message.attempts + 1,
                last_attempt_at=now,
            )
            .returning(message.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not ids:
        return []
    rows = session.execute(
        select(
            message.id,
            message.message_id,
            message.event_type,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            message.body,
            message.attempts,
        )
        .join(WebhookEndpoint, message.endpoint_id == WebhookEndpoint.id)
        .where(message.id.in_(ids))
        .order_by(message.id)
    )
    return [Claimed(*row) for row in rows]


def post(client: httpx.Client, message: Claimed, now: datetime) -> Attempt:
    """One attempt: the signed POST, and what came of it. Never raises for the receiver's sake."""
    body = message.body.encode("utf-8")
    headers = headers_for(message.secret, message.message_id, now, body)
    headers["user-agent"] = USER_AGENT
    try:
        with client.stream("POST", message.url, content=body, headers=headers) as answer:
            excerpt = _read_at_most(answer, MAX_ANSWER, time.monotonic() + ATTEMPT_DEADLINE)
            status = answer.status_code
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        # InvalidURL and UnicodeError (IDNA) are no HTTPError: an endpoint stored before
        # `check_url` refused its URL must fail alone, not stop the pass's other deliveries.
        return Attempt(message, False, None, failure_reason(None, type(exc).__name__))
    if 200 <= status < 300:
        return Attempt(message, True, status, None)
    text = excerpt.decode("utf-8", errors="replace")
    return Attempt(message, False, status, failure_reason(status, text))


def send_test(url: str, secret: str, now: datetime, client: httpx.Client | None = None) -> Attempt:
    """`dripcourse webhooks test`: one signed `webhook.test` POST now, not stored, not retried."""
    message = Claimed(0, new_message_id(), TEST_EVENT, url, secret, test_body(now), 1)
    if client is not None:
        return post(client, message, now)
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as own:
        return post(own, message, now)


def _post_batch(client: httpx.Client, batch: list[Claimed], clock: Clock) -> list[Attempt]:
    """Each message of a batch posted in turn; once an endpoint gives no answer at all (refused,
    timed out), the rest of its messages in this batch are not tried, and count as failed
    attempts retried on the same schedule: an endpoint that is down costs one timeout per
    batch, not one per message (the lesson pass runs this)."""
    silent: set[str] = set()
    attempts = []
    for message in batch:
        if message.url in silent:
            attempts.append(Attempt(message, False, None, NOT_TRIED))
            continue
        attempt = post(client, message, clock.now())
        if attempt.status is None:
            silent.add(message.url)
        attempts.append(attempt)
    return attempts


NOT_TRIED = "not tried: the endpoint gave no answer to an earlier message of this batch"


def _read_at_most(answer: httpx.Response, limit: int, deadline: float) -> bytes:
    """At most `limit` bytes of the answer, and what came before `deadline` (monotonic): the
    status is known already, the excerpt is only for the failure's reason."""
    got = bytearray()
    for chunk in answer.iter_bytes():
        got += chunk
        if len(got) >= limit or time.monotonic() >= deadline:
            break
    return bytes(got[:limit])


_RECORD_COLUMNS = ("status", "next_attempt_at", "delivered_at", "response_status", "last_error")


def record_attempts(
    session: Session, attempts: Sequence[Attempt], now: datetime, worker: str
) -> WebhookReport:
    """Write what each attempt came to, for the messages this worker still leases (one statement,
    run for all rows): delivered, to try again on the schedule (`domain.webhooks.next_attempt`),
    or given up. This is the one place a delivery attempt's outcome is recorded, and counted
    (`dripcourse_webhook_deliveries_total`)."""
    report = WebhookReport()
    rows: list[dict[str, Any]] = []
    for attempt in attempts:
        row: dict[str, Any] = {
            "b_id": attempt.message.id,
            "b_worker": worker,
            "v_response_status": attempt.status,
            "v_delivered_at": None,
            "v_last_error": attempt.reason,
        }
        if attempt.delivered:
            row |= {
                "v_status": WebhookStatus.DELIVERED,
                "v_delivered_at": now,
                "v_next_attempt_at": now,
            }
            report.delivered += 1
        else:
            following = next_attempt(attempt.message.attempts, now)
            if following is None:
                row |= {"v_status": WebhookStatus.FAILED, "v_next_attempt_at": now}
                report.failed += 1
            else:
                row |= {"v_status": WebhookStatus.PENDING, "v_next_attempt_at": following}
                report.retrying += 1
        rows.append(row)
    if rows:
        table = cast(Table, WebhookMessage.__table__)
        session.execute(
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.status == WebhookStatus.SENDING,
                table.c.lease_owner == bindparam("b_worker"),
            )
            .values(
                {name: bindparam(f"v_{name}") for name in _RECORD_COLUMNS}
                | {"lease_owner": None, "lease_expires_at": None}
            ),
            rows,
        )
    count_webhook_deliveries(
        session,
        {"delivered": report.delivered, "retrying": report.retrying, "failed": report.failed},
    )
    return report


def deliver_due(
    database: Database,
    clock: Clock,
    worker: str,
    *,
    client: httpx.Client | None = None,
    stop: threading.Event | None = None,
    limit: int = BATCH,
) -> WebhookReport:
    """Claim, post and record until nothing is due (or we are told to stop)."""
    total = WebhookReport()
    http = client  # made at the first batch: a pass with nothing to deliver opens no client
    try:
        while stop is None or not stop.is_set():
            with database.transaction() as session:
                batch = claim(session, clock.now(), worker, limit, LEASE)
            if not batch:
                break
            http = http or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
            attempts = _post_batch(http, batch, clock)
            with database.transaction() as session:
                done = record_attempts(session, attempts, clock.now(), worker)
            total.delivered += done.delivered
            total.retrying += done.retrying
            total.failed += done.failed
    finally:
        if http is not None and client is None:
            http.close()
    if total.delivered or total.retrying or total.failed:
        log.info(
            "webhooks: %d delivered, %d to retry, %d given up",
            total.delivered,
            total.retrying,
            total.failed,
        )
    return total
