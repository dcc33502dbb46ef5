"""SendGrid's Event Webhook (a JSON array of events a request), verified as Twilio documents it:
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features

The header `X-Twilio-Email-Event-Webhook-Signature` holds a base64 ECDSA (P-256, SHA-256)
signature, DER-encoded, over the `X-Twilio-Email-Event-Webhook-Timestamp` header's value followed
by the raw body; the public key is the base64 one the Signed Event Webhook settings show. The
timestamp must be within `WINDOW` (SendGrid retries a failed POST for up to 24 hours).

Events (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event): `bounce`
(`type` bounce: a hard bounce; `type` blocked: a soft one), `dropped` (SendGrid did not send:
its own bounce or invalid list makes it hard, its spam-report list a complaint), `spamreport`;
`sg_event_id`; our Message-ID in `smtp-id`; `sg_message_id`, whose part before `.filter` (the
reference's examples) or `.recvd-` (as in https://github.com/discourse/discourse/commit/
fbe5a9c71096dde8d7d59a0b2bec932b22c38a05's captured event) is the X-Message-Id its relay answered
at send time (`250 Ok: queued as <id>`). One event that cannot be read fails alone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from dripcourse.app.bouncereports import Kind, Report, message_id_of
from dripcourse.app.providers import (
    Event,
    digest_key,
    event_key,
    load_json,
    recipient,
    text,
    within_window,
)
from dripcourse.domain.provider_ids import from_reply
from dripcourse.errors import BadInput, Unauthentic

WINDOW = timedelta(hours=25)
"""SendGrid retries a POST not answered 2xx "for up to 24 hours after the event occurs"
(https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/troubleshooting); whether a
retry is signed with a new timestamp is not documented, so the window covers the first one's."""
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
MAX_EVENTS = 10_000
_SUFFIX = re.compile(r"\.(?:filter|recvd-)")
"""Where `sg_message_id` goes past the X-Message-Id: `<id>.filter0001...` in the Event Webhook
reference's examples, `<id>.recvd-...` in events SendGrid posts today (both documented above)."""


def public_key(setting: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER); `BadInput` if it is not one."""
    try:
        key = load_der_public_key(base64.b64decode(setting.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise BadInput("setting sendgrid_public_key: not a base64 public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadInput("setting sendgrid_public_key: not an ECDSA key")
    return key


def verify(
    body: bytes, headers: Mapping[str, str], key: ec.EllipticCurvePublicKey, now: datetime
) -> list[Any]:
    """The verified events; `Unauthentic` unless SendGrid signed this body recently."""
    timestamp = headers.get(TIMESTAMP, "")
    try:
        signature = base64.b64decode(headers.get(SIGNATURE, ""), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthentic("the SendGrid signature is not base64") from None
    if not signature or not timestamp:
        raise Unauthentic("the SendGrid signature headers are missing")
    try:
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise Unauthentic("the SendGrid signature does not verify") from None
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Unauthentic("the SendGrid timestamp is not a number of seconds")
    within_window(datetime.fromtimestamp(int(timestamp), UTC), now, WINDOW, "the timestamp")
    events = load_json(body)
    if not isinstance(events, list):
        raise BadInput("a SendGrid Event Webhook body is a JSON array")
    if len(events) > MAX_EVENTS:
        raise BadInput(f"more than {MAX_EVENTS} events in one request")
    return events


def read_event(event: Any) -> Event:
    """One event of a verified batch."""
    if not isinstance(event, dict):
        return Event((digest_key(event),), None, "malformed")
    keys = (event_key("event", event.get("sg_event_id")) or digest_key(event),)
    name, reason = event.get("event"), text(event.get("reason"), 300)
    kind: Kind | None = None
    if name == "bounce":
        kind = Kind.SOFT if event.get("type") == "blocked" else Kind.HARD
    elif name == "spamreport":
        kind = Kind.COMPLAINT
    elif name == "dropped":
        lowered = reason.lower()
        if "spam" in lowered:
            kind = Kind.COMPLAINT
        elif "bounce" in lowered or "invalid" in lowered:
            kind = Kind.HARD
    if kind is None:
        return Event(keys, None, text(name, 16).lower() or "malformed")
    found = message_id_of(event.get("smtp-id"))
    status = text(event.get("status"), 20)
    detail = " ".join(part for part in ("SendGrid:", text(name, 16), status, reason) if part)
    address = recipient(event.get("email"))
    report = Report(kind, [], [found] if found else [], detail[:500], _provider_id(event), address)
    return Event(keys, report)


def _provider_id(event: dict[str, Any]) -> str | None:
    value = event.get("sg_message_id")
    if not isinstance(value, str) or " " in value:
        return None
    return from_reply(_SUFFIX.split(value, 1)[0])
