"""The provider's id of an accepted message, read from the SMTP server's final reply to DATA.

A provider's relay names the message it queued in that reply, and its bounce and complaint
events name the message by the same id: Amazon SES answers `250 Ok <ses-message-id>` (the
`mail.messageId` of its notifications), Postfix-like relays `250 2.0.0 Ok: queued as <id>`.
A remote server wrote the reply, so it is read in this one place, defensively: the last word of
the reply that looks like an id (visible ASCII, a digit in it, not an enhanced status code), at
most `MAX_LENGTH` characters; anything else is no id at all.
"""

from __future__ import annotations

import re

MAX_LENGTH = 200
"""Longer than any provider's id we know (SES: 60 characters), shorter than the column (255)."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@=+:/-]*")
_STATUS_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def from_reply(text: bytes | str) -> str | None:
    """The provider's id in a final reply's text (without its code), or None."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    # Only the last line matters: a multi-line reply ends with its conclusion.
    last = text.replace("\r", "\n").rstrip("\n").rsplit("\n", 1)[-1]
    words = last.split()
    if not words:
        return None
    word = words[-1].strip("<>[]().,;")
    if (
        len(word) > MAX_LENGTH
        or not _ID.fullmatch(word)
        or not any(c.isdigit() for c in word)
        or _STATUS_CODE.fullmatch(word)
    ):
        return None
    return word
