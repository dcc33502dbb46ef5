"""Mailgun webhooks (one event a request), verified as Mailgun documents it:
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks

`signature.signature` is the hex HMAC-SHA256, keyed with the webhook signing key, of
`signature.timestamp` followed by `signature.token`. The signature covers those two only, not the
event: so the token is one of the event's keys (Mailgun's advice: refuse a token seen before),
and the timestamp must be within `WINDOW` (Mailgun retries a failed webhook for 8 hours).

`event-data` (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads):
`event` failed (with `severity` permanent, a hard bounce, or temporary, a soft one) or complained; `id`;
our Message-ID in `message.headers.message-id`, without its angle brackets.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from dripcourse.app.bouncereports import Kind, Report, message_id_of
from dripcourse.app.providers import (
    Event,
    digest_key,
    event_key,
    load_json,
    mapping,
    recipient,
    text,
    within_window,
)
from dripcourse.errors import BadInput, Unauthentic

WINDOW = timedelta(hours=9)
"""Mailgun retries a webhook it could not deliver "during 8 hours" (5 min, 10 min, 15 min, 1 h, 2 h,
4 h: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-retries); whether
a retry carries a new signature timestamp is not documented, so the window covers the original's."""


def verify(body: bytes, signing_key: str, now: datetime) -> dict[str, Any]:
    """The verified payload; `Unauthentic` unless its signature is Mailgun's and recent."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise BadInput("a Mailgun webhook is a JSON object")
    signature = mapping(payload.get("signature"))
    timestamp, token, given = (
        signature.get("timestamp"),
        signature.get("token"),
        signature.get("signature"),
    )
    if not all(isinstance(each, str) for each in (timestamp, token, given)):
        raise Unauthentic("the Mailgun signature is missing")
    assert isinstance(timestamp, str) and isinstance(token, str) and isinstance(given, str)
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise Unauthentic("the Mailgun signature does not verify")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthentic("the Mailgun timestamp is not a number of seconds")
    within_window(datetime.fromtimestamp(int(timestamp), UTC), now, WINDOW, "the timestamp")
    return payload


def read_event(payload: dict[str, Any]) -> Event:
    """The event of a verified payload."""
    token = str(mapping(payload.get("signature")).get("token"))
    data = mapping(payload.get("event-data"))
    event_id = event_key("event", data.get("id")) or digest_key(data)
    keys = (f"token:{token}"[:255], event_id)
    name = data.get("event")
    if name == "failed":
        kind = Kind.HARD if data.get("severity") == "permanent" else Kind.SOFT
        status = mapping(data.get("delivery-status"))
        parts = [
            text(data.get("severity"), 20),
            text(status.get("code"), 10),
            text(status.get("message") or status.get("description"), 300),
        ]
        detail = "Mailgun: failed " + " ".join(part for part in parts if part)
    elif name == "complained":
        kind, detail = Kind.COMPLAINT, "complaint reported by Mailgun"
    else:
        return Event(keys, None, text(name, 16).lower() or "malformed")
    headers = mapping(mapping(data.get("message")).get("headers"))
    found = message_id_of(headers.get("message-id"))
    address = recipient(data.get("recipient"))
    report = Report(kind, [], [found] if found else [], detail[:500], recipient=address)
    return Event(keys, report)
