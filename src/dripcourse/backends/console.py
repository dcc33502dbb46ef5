"""Console delivery: prints each message as its .eml source, for development and the demo.

Responsible for the `console:` URL and for writing messages, decoded as text, to a stream with a
separator line after each. The contract is in `base.py`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import Self, TextIO
from urllib.parse import urlsplit

from dripcourse.backends.base import (
    BackendError,
    DeliveryBackend,
    DeliveryResult,
    Outcome,
    OutgoingMessage,
)

SEPARATOR = "-" * 79


class ConsoleBackend(DeliveryBackend):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.netloc or parts.path or parts.query or parts.fragment:
            raise BackendError("console: takes no options")
        return cls()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        # Looked up per call, not at construction, so redirected stdout (pytest, redirect_stdout)
        # is honoured.
        stream = sys.stdout if self.stream is None else self.stream
        results: list[DeliveryResult] = []
        for message in messages:
            text = message.data.decode("utf-8", errors="replace").replace("\r\n", "\n")
            try:
                stream.write(text if text.endswith("\n") else text + "\n")
                stream.write(SEPARATOR + "\n")
            except OSError as exc:
                detail = f"cannot write to the console: {exc.strerror or exc}"
                results.extend(
                    DeliveryResult(m.key, Outcome.TEMPORARY, None, detail)
                    for m in messages[len(results) :]
                )
                break
            results.append(DeliveryResult(message.key, Outcome.SENT))
        with contextlib.suppress(OSError):  # a broken stream was reported above
            stream.flush()
        return results
