"""Outgoing webhooks as pure rules, no I/O: the event names, the payload, the Standard Webhooks
signature and its `whsec_` secrets, what an endpoint URL may be, and when a failed delivery is
tried again or given up.

The format is Standard Webhooks (https://www.standardwebhooks.com/, spec/standard-webhooks.md):
three headers, `webhook-id` (the same on every attempt, so a receiver drops a repeat),
`webhook-timestamp` (seconds since the epoch, of this attempt) and `webhook-signature`
(`v1,<base64 of HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`). The tests verify our output
with the `standardwebhooks` package, an implementation independent of this one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from dripcourse.errors import BadInput


class EventType(StrEnum):
    SUBSCRIBER_CREATED = "subscriber.created"
    SUBSCRIBER_CONFIRMED = "subscriber.confirmed"
    SUBSCRIBER_UNSUBSCRIBED = "subscriber.unsubscribed"
    SUBSCRIBER_FORGOTTEN = "subscriber.forgotten"
    LESSON_SENT = "lesson.sent"
    LESSON_FAILED = "lesson.failed"
    ENROLLMENT_COMPLETED = "enrollment.completed"
    BOUNCE_RECEIVED = "bounce.received"
    COMPLAINT_RECEIVED = "complaint.received"


ALL_EVENTS: frozenset[str] = frozenset(EventType)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, as the outbox stores it: its type, whose it is (None: nobody's,
    delivered in no particular order) and the payload's `data`."""

    type: EventType
    subscriber_id: int | None
    data: Mapping[str, Any] = field(default_factory=dict)


def body_of(event: Event, at: datetime) -> str:
    """The JSON body sent for `event` (the shape Standard Webhooks recommends: `type`,
    `timestamp`, `data`), written once: every attempt sends these exact bytes."""
    return _body(str(event.type), event.data, at)


TEST_EVENT = "webhook.test"
"""The type of what `dripcourse webhooks test` sends (never stored, never retried)."""


def test_body(at: datetime) -> str:
    return _body(TEST_EVENT, {"test": True}, at)


def _body(kind: str, data: Mapping[str, Any], at: datetime) -> str:
    payload = {"type": kind, "timestamp": iso(at), "data": dict(data)}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def without_address(body: str) -> str:
    """The body with the person's address taken out (they asked to be forgotten)."""
    payload = json.loads(body)
    payload.get("data", {}).pop("email", None)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


# --- Secrets and signatures -------------------------------------------------------------------

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def new_secret() -> str:
    """A fresh `whsec_` secret: 32 random bytes in base64, as Svix and the spec make them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; `BadInput` for anything else. The spec asks
    for 24 to 64 bytes of key."""
    if not secret.startswith(SECRET_PREFIX):
        raise BadInput("a webhook secret has the form whsec_<base64>")
    encoded = secret[len(SECRET_PREFIX) :]
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", encoded):
        raise BadInput("a webhook secret has the form whsec_<base64>")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise BadInput("a webhook secret has the form whsec_<base64>") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise BadInput(
            f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes of key"
            f" (this one {len(key)})"
        )
    return key


def signature(secret: str, message_id: str, at: datetime, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`."""
    signed = f"{message_id}.{timestamp_of(at)}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def timestamp_of(at: datetime) -> int:
    return int(at.timestamp())


def headers_for(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_of(at)),
        "webhook-signature": signature(secret, message_id, at, body),
    }


# --- Endpoints --------------------------------------------------------------------------------

MAX_URL_LENGTH = 2000


def check_url(url: str) -> str:
    """An endpoint URL as the operator gave it, checked once: http or https, a host, no user or
    password (a secret in a URL ends up in logs and listings; the signature is the credential),
    no fragment, no spaces or control characters."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise BadInput(f"a webhook URL has 1 to {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise BadInput("a webhook URL has no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"not a URL: {url!r} ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise BadInput(f"a webhook URL starts with http:// or https://, not {url!r}")
    if not parts.hostname:
        raise BadInput(f"a webhook URL names a host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise BadInput("a webhook URL carries no user or password (the signature authenticates)")
    if parts.fragment:
        raise BadInput("a webhook URL has no #fragment")
    del port
    _check_sendable(url)
    return url


def _check_sendable(url: str) -> None:
    """`BadInput` for a URL that parses but that the HTTP client cannot send to: httpx refuses
    its host (IDNA both ways: `host` is decoded for the Host header, a malformed `xn--` label
    fails there; an IPv6 literal) or its text (a lone surrogate), or the host has a DNS label
    empty or over 63 octets, which Python's `idna` codec refuses when connecting (RFC 1035 2.3.4).
    Found only at the first attempt, such a URL would stop every delivery of the pass."""
    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 (decoding the host is the check)
        parsed.raw_host.decode("ascii").encode("idna")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise BadInput(f"a webhook URL that no HTTP client can send to: {exc}") from None


def check_events(names: Sequence[str]) -> tuple[str, ...]:
    """The event types an endpoint wants; none given: all of them."""
    wanted = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [name for name in wanted if name not in ALL_EVENTS]
    if unknown:
        raise BadInput(
            f"unknown webhook event {unknown[0]!r}; known: {', '.join(sorted(ALL_EVENTS))}"
        )
    return wanted


def wants(events: str, event_type: str) -> bool:
    """Whether an endpoint whose stored `events` (comma-separated; empty: all) wants this type."""
    return not events or event_type in events.split(",")


# --- Retries ----------------------------------------------------------------------------------

RETRY_DELAYS: tuple[timedelta, ...] = tuple(
    timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
)
"""After the first attempt fails, these delays between attempts (Svix's schedule,
https://docs.svix.com/retries): eight attempts over 27 h 35 min, so an endpoint down for a day
still gets everything."""


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after the `attempts`-th attempt failed at `now`; None: give up."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts - 1]


MAX_REASON = 200


def failure_reason(status: int | None, text: str) -> str:
    """What is stored of a failed attempt: the status and a short excerpt of the receiver's
    answer (a stranger's words) with only printable ASCII kept, at most `MAX_REASON` characters."""
    printable = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    excerpt = " ".join(printable.split())
    head = f"HTTP {status}" if status is not None else "no answer"
    reason = f"{head}: {excerpt}" if excerpt else head
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def enrolment_data(
    subscriber_id: int, email: str | None, enrollment_id: int, course: str, **more: Any
) -> dict[str, Any]:
    """The `data` of an event about one enrolment: ids, the address, the course's slug, and what
    the event adds (a lesson's key and position, a status). Never a token or a secret."""
    data: dict[str, Any] = {
        "subscriber_id": subscriber_id,
        "enrollment_id": enrollment_id,
        "course": course,
    }
    if email is not None:
        data["email"] = email
    return data | more
