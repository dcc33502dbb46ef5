"""Signed links: confirm, unsubscribe, view online, tracked clicks.

Each token is an HMAC-signed payload (itsdangerous) whose salt is its purpose, so a token made for one
purpose never passes for another. Confirm tokens expire; unsubscribe and view-online tokens do not,
because the links sit in emails people open months later (RFC 8058 wants unsubscribing to keep working).

The secret comes from `DRIPCOURSE_SECRET_KEY`, or is generated on first use and kept in the database
(`store.queries.secret_key`), so every worker sharing the database signs alike; this module does no I/O.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import itsdangerous
from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer

from dripcourse.errors import BadInput


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    VIEW = "view"
    CLICK = "click"
    """A tracked link (`clicks.py`): signed together with its target URL."""
    INVITE = "invite"
    """An operator's link to choose a password (`app/invitations.py`)."""
    EARLY = "early"
    """"Get the next lesson now" (`app/early.py`): the enrolment and the lesson it was sent in."""


EXPIRING = frozenset({Purpose.CONFIRM, Purpose.INVITE})


class Signer:
    """Makes and reads the tokens of every purpose.

    Confirm tokens carry a signed timestamp (itsdangerous' timed serializer) so that they expire.
    Unsubscribe and view tokens go into every lesson, so they are made for speed: a compact
    payload (`e42`) and an HMAC signature (itsdangerous' `Signer`), about 3 microseconds each.
    """

    def __init__(self, secret_key: str) -> None:
        self._timed = {
            purpose: URLSafeTimedSerializer(secret_key, salt=f"dripcourse.{purpose}")
            for purpose in EXPIRING
        }
        self._compact = {
            purpose: KeptKeySigner(secret_key, salt=f"dripcourse.{purpose}")
            for purpose in Purpose
            if purpose not in EXPIRING
        }

    def make(self, purpose: Purpose, payload: dict[str, int]) -> str:
        if purpose in EXPIRING:
            return str(self._timed[purpose].dumps(payload))
        return self._compact[purpose].sign(_compact_body(payload)).decode("ascii")

    def read(
        self, purpose: Purpose, token: str, max_age: timedelta | None = None
    ) -> dict[str, Any]:
        """The payload of a valid token; `BadInput` for a forged, tampered or expired one."""
        try:
            _require_canonical(token)
            if purpose in EXPIRING:
                seconds = None if max_age is None else int(max_age.total_seconds())
                payload = self._timed[purpose].loads(token, max_age=seconds)
            else:
                body = self._compact[purpose].unsign(token).decode("ascii")
                payload = _parse_compact(body)
        except SignatureExpired:
            raise BadInput("this link has expired") from None
        except (BadData, UnicodeError, ValueError):
            raise BadInput("this link is not valid") from None
        if not isinstance(payload, dict):
            raise BadInput("this link is not valid")
        return payload

    def make_bound(self, purpose: Purpose, payload: dict[str, int], bound: str) -> str:
        """A compact token whose signature also covers `bound`, a text that travels beside the
        token (a click's target URL): the token is valid with that text only."""
        body = _compact_body(payload)
        signed = self._compact[purpose].sign(f"{body}\n{bound}").decode("ascii")
        return f"{body}.{signed.rpartition('.')[2]}"

    def read_bound(self, purpose: Purpose, token: str, bound: str) -> dict[str, int]:
        """The payload of a `make_bound` token, if it was made with this `bound` text; else
        `BadInput`, like any forged or tampered token."""
        body, dot, signature = token.rpartition(".")
        try:
            _require_canonical(token)
            if not dot:
                raise BadSignature("no signature")
            self._compact[purpose].unsign(f"{body}\n{bound}.{signature}")
            return _parse_compact(body)
        except (BadData, UnicodeError, ValueError):
            raise BadInput("this link is not valid") from None

    def issued_at(self, purpose: Purpose, token: str) -> datetime:
        """When an expiring token was made (ask after `read` has accepted it)."""
        _, stamp = self._timed[purpose].loads(token, return_timestamp=True)
        issued: datetime = stamp
        return issued.astimezone(UTC) if issued.tzinfo else issued.replace(tzinfo=UTC)


class KeptKeySigner(itsdangerous.Signer):
    """itsdangerous derives the signing key from the secret on every call; it never changes."""

    @functools.cached_property
    def _derived(self) -> bytes:
        return super().derive_key()

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        return self._derived if secret_key is None else super().derive_key(secret_key)


_COMPACT = re.compile(r"[a-z]{1,8}\d{1,18}(?:-[a-z]{1,8}\d{1,18})*")
_FIELD = re.compile(r"([a-z]+)(\d+)")


def _require_canonical(token: str) -> None:
    """Refuse a token whose signature is not spelled the one way base64 spells it.

    A signature's last base64 letter carries spare bits, so up to four letters there decode to the
    same bytes; accepting only the canonical one means any changed letter invalidates a token.
    """
    signature = token.rpartition(".")[2].encode("ascii")
    if (
        itsdangerous.encoding.base64_encode(itsdangerous.encoding.base64_decode(signature))
        != signature
    ):
        raise BadSignature("not the canonical token")


def _compact_body(payload: dict[str, int]) -> str:
    body = "-".join(f"{key}{int(value)}" for key, value in payload.items())
    if not _COMPACT.fullmatch(body):
        raise ValueError(f"a compact token holds short keys and whole numbers, not {payload}")
    return body


def _parse_compact(body: str) -> dict[str, int]:
    if not _COMPACT.fullmatch(body):
        raise ValueError("not a compact payload")
    return {key: int(value) for key, value in _FIELD.findall(body)}
