"""Postmark's bounce and spam complaint webhooks (one record a request).

Postmark signs nothing; the protection it documents is HTTP basic auth in the webhook's URL
(https://postmarkapp.com/developer/webhooks/webhooks-overview), plus allowing only its
published IP addresses at the firewall. So the credentials are the proof (`verify`, compared in
constant time), and with no signed timestamp there is no replay window: the record's
`RecordType` and `ID` are its key, remembered for good.

Records: https://postmarkapp.com/developer/webhooks/bounce-webhook and
https://postmarkapp.com/developer/webhooks/spam-complaint-webhook. `Type` HardBounce and
BadEmailAddress are hard bounces, SoftBounce, Transient and DnsError soft ones, SpamComplaint a
complaint; the others (AutoResponder, Unsubscribe, ...) are no bounce of ours. The message is
named by Postmark's `MessageID`, the id its relay gave it at send time (`Delivery.provider_id`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from dripcourse.app.bouncereports import Kind, Report
from dripcourse.app.providers import Event, digest_key, event_key, load_json, recipient, text
from dripcourse.domain.provider_ids import from_reply
from dripcourse.errors import BadInput, Unauthentic

_KINDS = {
    "HardBounce": Kind.HARD,
    "BadEmailAddress": Kind.HARD,
    "SoftBounce": Kind.SOFT,
    "Transient": Kind.SOFT,
    "DnsError": Kind.SOFT,
    "SpamComplaint": Kind.COMPLAINT,
}


def verify(headers: Mapping[str, str], user: str, password: str) -> None:
    """`Unauthentic` unless the request carries the configured basic-auth credentials."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    expected = f"{user}:{password}".encode()
    # Both comparisons always run: the answer takes as long whatever was wrong.
    good_scheme = hmac.compare_digest(scheme.lower().encode(), b"basic")
    if not (hmac.compare_digest(given, expected) and good_scheme):
        raise Unauthentic("the Postmark webhook's credentials are wrong or missing")


def read(body: bytes) -> Event:
    record = load_json(body)
    if not isinstance(record, dict):
        raise BadInput("a Postmark webhook is a JSON object")
    record_type = text(record.get("RecordType"), 32)
    key = event_key(record_type or "record", record.get("ID")) or digest_key(record)
    kind = _KINDS.get(str(record.get("Type")))
    if record_type not in ("Bounce", "SpamComplaint") or kind is None:
        return Event((key,), None, text(record.get("Type"), 16).lower() or "malformed")
    parts = [text(record.get("Type"), 32), text(record.get("Description"), 200)]
    parts.append(text(record.get("Details"), 200))
    detail = "Postmark: " + " ".join(part for part in parts if part)
    message = record.get("MessageID")
    provider_id = from_reply(message) if isinstance(message, str) and " " not in message else None
    address = recipient(record.get("Email"))
    return Event((key,), Report(kind, [], [], detail[:500], provider_id, address))
