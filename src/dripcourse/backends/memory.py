"""In-memory delivery: keeps sent messages in a list for tests and same-process tools.

Responsible for the `memory:` URL and the module-level `outbox` (Django's locmem shape), which every
`MemoryBackend` appends to; clear it with `outbox.clear()`, never rebind it. The contract is in
`base.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self
from urllib.parse import urlsplit

from dripcourse.backends.base import (
    BackendError,
    DeliveryBackend,
    DeliveryResult,
    Outcome,
    OutgoingMessage,
)

outbox: list[OutgoingMessage] = []
"""Every message any MemoryBackend in this process has sent, oldest first."""


class MemoryBackend(DeliveryBackend):
    outbox: ClassVar[list[OutgoingMessage]] = outbox
    """The module-level `outbox`, the same list object."""

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.netloc or parts.path or parts.query or parts.fragment:
            raise BackendError("memory: takes no options")
        return cls()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        outbox.extend(messages)
        return [DeliveryResult(message.key, Outcome.SENT) for message in messages]
