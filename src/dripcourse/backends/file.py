"""File delivery: writes each message as an .eml file into a folder, for inspection and archiving.

Responsible for the `file:///absolute/folder` and `file:relative/folder` URLs, creating and
checking the folder, naming files `<UTC timestamp>-<key>.eml` and writing them atomically so a
reader never sees half a message. The folder, if we create it, is 0700 and every message 0600: they
hold subscribers' addresses and their unsubscribe links. The contract is in `base.py`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

from dripcourse.backends.base import (
    BackendError,
    DeliveryBackend,
    DeliveryResult,
    Outcome,
    OutgoingMessage,
)
from dripcourse.store.privatefiles import FILE_MODE, make_private_dir

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_KEY_LENGTH = 80


class FileBackend(DeliveryBackend):
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise BackendError(f"{str(self.folder)!r} is not a folder")
        try:
            make_private_dir(self.folder)
        except OSError as exc:
            raise BackendError(
                f"cannot create mail folder {str(self.folder)!r}: {exc.strerror}"
            ) from exc
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise BackendError(f"mail folder {str(self.folder)!r} is not writable")

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise BackendError(
                "a file URL names a local folder: file:///absolute/folder or file:relative/folder"
            )
        if parts.query or parts.fragment:
            raise BackendError("file: takes no options")
        folder = unquote(parts.path)
        if not folder:
            raise BackendError(
                "no folder; expected file:///absolute/folder or file:relative/folder"
            )
        return cls(folder)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        for message in messages:
            try:
                path = self._write(message)
            except OSError as exc:
                detail = f"cannot write to {str(self.folder)!r}: {exc.strerror or exc}"
                results.append(DeliveryResult(message.key, Outcome.TEMPORARY, None, detail))
            else:
                results.append(DeliveryResult(message.key, Outcome.SENT, None, path.name))
        return results

    def _write(self, message: OutgoingMessage) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stem = f"{stamp}-{_UNSAFE.sub('_', message.key)[:_MAX_KEY_LENGTH] or 'message'}"
        # A dot-name in the same folder: invisible to *.eml readers, and os.replace stays atomic
        # because it never crosses a file system. mkstemp makes it 0600 less the umask; fchmod
        # restores the owner's bits a umask such as 0o277 took, and os.replace keeps the mode.
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "wb") as file:
                file.write(message.data)
                file.flush()
                os.fsync(file.fileno())
            path = self._unused_path(stem)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return path

    def _unused_path(self, stem: str) -> Path:
        # Same key in the same microsecond (a retried batch) must not overwrite the earlier file.
        path = self.folder / f"{stem}.eml"
        counter = 1
        while path.exists():
            path = self.folder / f"{stem}-{counter}.eml"
            counter += 1
        return path
