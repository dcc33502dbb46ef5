"""VERP envelope senders: every message's MAIL FROM names its delivery, signed.

`bounces@example.com` becomes `bounces+42-1a2b3c4d@example.com` for delivery 42. A bounce or a
complaint comes back to that address (RFC 5321 4.5.5: non-delivery reports go to the reverse-path),
so the bounce processor knows which delivery failed without trusting the report's text. The tag is
a truncated HMAC of the delivery id made with the secret key that signs the links (`tokens.py`): a
forged or altered address names no delivery. It is written in lower-case hex because mail servers
may change the case of local parts.

The From header stays the course sender; the receiving server turns MAIL FROM into `Return-Path`.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from dripcourse.domain.course_settings import Sender
from dripcourse.mail.tokens import KeptKeySigner

TAG_LENGTH = 8
"""Hex digits of the HMAC kept: 32 bits, so a forger guesses one in four billion."""

_VERP = re.compile(r"(?P<local>[^@+\s]+)\+(?P<id>\d{1,18})-(?P<tag>[0-9a-f]+)@(?P<domain>[^@\s]+)")


class BounceAddresses:
    """Makes and reads VERP addresses with one secret key."""

    def __init__(self, secret_key: str) -> None:
        signer = KeptKeySigner(secret_key, salt="dripcourse.bounce", digest_method=hashlib.sha256)
        self._key = signer.derive_key()

    def make(self, base: str, delivery_id: int) -> str:
        """`local+<id>-<tag>@domain` for the base address `local@domain`."""
        local, _, domain = base.rpartition("@")
        if not local or not domain:
            raise ValueError(f"not an address to build bounce addresses on: {base!r}")
        return f"{local}+{delivery_id}-{self._tag(delivery_id)}@{domain}"

    def read(self, address: str) -> int | None:
        """The delivery id of a VERP address with a valid tag; None for anything else."""
        found = _VERP.fullmatch(address.strip().strip("<>").lower())
        if found is None:
            return None
        delivery_id = int(found["id"])
        return delivery_id if hmac.compare_digest(found["tag"], self._tag(delivery_id)) else None

    def _tag(self, delivery_id: int) -> str:
        digest = hmac.new(self._key, str(delivery_id).encode("ascii"), hashlib.sha256)
        return digest.hexdigest()[:TAG_LENGTH]


def looks_like_verp(address: str) -> bool:
    """Shaped like one of our addresses, whether or not its tag is valid."""
    return _VERP.fullmatch(address.strip().strip("<>").lower()) is not None


def bounce_base(sender: Sender, configured: str) -> str:
    """Where bounces go: the course's `sender.bounce_email`, else `DRIPCOURSE_BOUNCE_ADDRESS`, else
    `bounces@` the course sender's domain."""
    if sender.bounce_email:
        return sender.bounce_email
    if configured:
        return configured
    return f"bounces@{sender.email.rpartition('@')[2]}"
