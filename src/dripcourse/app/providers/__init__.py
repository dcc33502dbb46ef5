"""Bounce and complaint events from email providers, verified and read into `bouncereports.Report`.

One small module per provider (`ses` with `sns`, `postmark`, `mailgun`, `sendgrid`), each a pure
function over the request's bytes and headers, the settings it needs and `now`: it proves the
request comes from the provider by the provider's documented scheme (raising `Unauthentic`), reads
the body (malformed JSON is `BadInput`), and turns each event into an `Event`. Applying them is
`app/provider_events.py`'s work; the route is `web/hooks.py`.

Bodies are hostile: every value is checked for its type before use, and one event of a batch that
cannot be read becomes an `Event` with no report and a reason, never an exception for the batch.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dripcourse.app.bouncereports import Report
from dripcourse.domain.validation import normalise_email
from dripcourse.errors import BadInput, Unauthentic

AHEAD = timedelta(minutes=5)
"""How far ahead of our clock a signed timestamp may be (the two clocks differ a little)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_DETAIL = 500


@dataclass(frozen=True)
class Event:
    """One verified event: the keys that make it unique, and its report, if it is one we act on."""

    keys: tuple[str, ...]
    """Each must be new for the event to apply (`provider_events`): the provider's event id, and
    for Mailgun the signature's token too (its signature does not cover the event itself)."""
    report: Report | None
    ignored: str = ""
    """Why there is no report: an event we do not act on (`delivery`), or one that is malformed."""


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadInput(f"the body is not JSON ({type(exc).__name__})") from None


def within_window(instant: datetime, now: datetime, past: timedelta, what: str) -> None:
    """A signed timestamp too old (a replay after the provider's retry period) or too far ahead."""
    if instant < now - past:
        raise Unauthentic(f"{what} is older than {past}: refused as a replay")
    if instant > now + AHEAD:
        raise Unauthentic(f"{what} is ahead of our clock by more than {AHEAD}")


def text(value: Any, limit: int = MAX_DETAIL) -> str:
    """A stranger's value as one short line of text (anything that is not a string is empty)."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return ""
    return " ".join(_CONTROL.sub(" ", str(value)).split())[:limit]


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def digest_key(value: Any) -> str:
    """A key for an event that names no id of its own: the SHA-256 of its JSON."""
    data = json.dumps(value, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def event_key(prefix: str, value: Any) -> str | None:
    """`prefix:value` for a provider's id, if it is a short printable string."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
        return None
    if not value.isascii():
        return None
    return f"{prefix}:{value}"


def recipient(value: Any) -> str | None:
    """The recipient address an event names, normalised as subscribers' are, or None if it is
    not a valid address (`Report.recipient`)."""
    if not isinstance(value, str):
        return None
    try:
        return normalise_email(value)
    except BadInput:
        return None
