"""The delivery contract every backend fulfils.

A backend takes finished messages and reports, per message, what became of it. It never raises for one
message's failure: a refused recipient, a 4xx, a lost connection or a message it cannot take is a
`DeliveryResult`. (A backend that raises anyway has each message of that group sent again on its own
by the dispatcher, so that only the one it cannot take fails.) The dispatcher
decides what to do with each result (record, retry later, suppress); the backend only delivers.

Lifecycle (Django's mail backends): `open()` and `close()` are no-ops unless a backend holds a
connection; a backend is also a context manager, and `send()` opens on demand.

A message arrives finished, its DKIM signature included (the message builder signs it): a backend
hands its bytes on unchanged, or the signature would no longer hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType

from dripcourse.domain.delivery import DeliveryResult as DeliveryResult
from dripcourse.domain.delivery import Outcome as Outcome
from dripcourse.domain.delivery import OutgoingMessage as OutgoingMessage
from dripcourse.errors import BackendError as BackendError  # kept importable from here


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
