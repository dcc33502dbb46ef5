"""The delivery contract every backend fulfils.

A backend takes finished messages and reports, per message, what became of it. It never raises for one
message's failure: a refused recipient, a 4xx, a lost connection or a message it cannot sign is a
`DeliveryResult`. (A backend that raises anyway has each message of that group sent again on its own
by the dispatcher, so that only the one it cannot take fails.) The dispatcher
decides what to do with each result (record, retry later, suppress); the backend only delivers.

Lifecycle (Django's mail backends): `open()` and `close()` are no-ops unless a backend holds a
connection; a backend is also a context manager, and `send()` opens on demand.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from dripcourse.errors import BackendError as BackendError  # kept importable from here

if TYPE_CHECKING:
    from dripcourse.mail.dkim import DkimSigner


class Outcome(enum.StrEnum):
    SENT = "sent"
    """The receiving server accepted the message (or the backend stored it)."""
    TEMPORARY = "temporary"
    """Not delivered now; trying again later may work (4xx, connection refused, timeout)."""
    PERMANENT = "permanent"
    """Not delivered and never will be to this address: the server refused it (5xx on the
    recipient). The address is suppressed."""
    UNSENDABLE = "unsendable"
    """Not delivered, for a reason on our side that trying again will not mend: the message could
    not be built or signed, or the server cannot take this address (no SMTPUTF8). The delivery
    fails; the address is not at fault and is never suppressed for it."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One finished message: the envelope and the exact bytes that go on the wire."""

    key: str
    """The dispatcher's name for the message (a delivery id); echoed back in its result."""
    sender: str
    """Envelope sender (MAIL FROM)."""
    recipient: str
    """Envelope recipient (RCPT TO): one recipient per message, so each outcome is one person's."""
    data: bytes
    """The RFC 5322 message, CRLF line endings."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    key: str
    outcome: Outcome
    code: int | None = None
    """The SMTP reply code where there was one."""
    detail: str = ""
    """A short human-readable reason: the server's reply text or the error."""


def send_each_ready(
    items: Sequence[OutgoingMessage | DeliveryResult],
    send: Callable[[Sequence[OutgoingMessage]], list[DeliveryResult]],
) -> list[DeliveryResult]:
    """`send` the messages among `items` at once; a result in `items` (a message that could not
    be made ready) stands for itself. One result per item, in order."""
    messages = [item for item in items if isinstance(item, OutgoingMessage)]
    answers = iter(send(messages) if messages else [])
    return [next(answers) if isinstance(item, OutgoingMessage) else item for item in items]


__all__ = ["BackendError", "DeliveryBackend", "DeliveryResult", "Outcome", "OutgoingMessage"]


class DeliveryBackend(ABC):
    """Base class of all delivery backends; see the module docstring for the contract."""

    @classmethod
    def from_url(cls, url: str) -> DeliveryBackend:
        """Build the backend from its URL; raise `BackendError` for options it cannot use."""
        return cls()

    def sign_with(self, signer: DkimSigner) -> None:  # noqa: B027 - a no-op by design
        """DKIM-sign what is sent from now on. Backends that hand mail to a server (smtp) do;
        the development ones (console, file, memory) show messages as built."""

    def open(self) -> None:  # noqa: B027 - a no-op by design; connection-holding backends override
        """Prepare to send (connect). Sending on an unopened backend opens it."""

    def close(self) -> None:  # noqa: B027
        """Release what `open()` took. Safe to call twice."""

    @abstractmethod
    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        """Deliver each message; return one result per message, in the same order."""

    def __enter__(self) -> DeliveryBackend:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
