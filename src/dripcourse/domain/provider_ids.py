"""The provider's id of an accepted message, read from the SMTP server's final reply to DATA.

A provider's relay may name the message it queued in that reply, and its bounce and complaint
events then name the message by the same id. What the relays answer (the reference is PHPMailer's
`SMTP::$smtp_transaction_id_patterns`, which reads the same replies):

- Amazon SES: `250 Ok <ses-message-id>`, the `mail.messageId` of its notifications;
- SendGrid: `250 Ok: queued as <X-Message-Id>`, the start of its events' `sg_message_id`;
- Postfix-like relays `250 2.0.0 Ok: queued as <id>`, Exim `250 OK id=<id>`;
- Mailgun: `250 Great success`, no id at all (its events carry our Message-ID instead).

A remote server wrote the reply, so it is read in this one place, defensively: the word after
`queued as` or `id=` if there is one, else the last word of the reply if it looks like an id (a
digit in it, not an enhanced status code); visible ASCII only, at most `MAX_LENGTH` characters;
anything else is no id at all.
"""

from __future__ import annotations

import re

MAX_LENGTH = 200
"""Longer than any provider's id we know (SES: 60 characters), shorter than the column (255)."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@=+:/-]*")
_STATUS_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_NAMED = re.compile(r"(?:\bqueued as|\bid=)\s*(\S+)", re.IGNORECASE)


def from_reply(text: bytes | str) -> str | None:
    """The provider's id in a final reply's text (without its code), or None."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    # Only the last line matters: a multi-line reply ends with its conclusion.
    last = text.replace("\r", "\n").rstrip("\n").rsplit("\n", 1)[-1]
    named = _NAMED.search(last)
    if named:
        # The relay says which word is the id: no need for it to look like one.
        return _checked(named.group(1), needs_digit=False)
    words = last.split()
    return _checked(words[-1], needs_digit=True) if words else None


def _checked(word: str, needs_digit: bool) -> str | None:
    word = word.strip("<>[]().,;")
    if (
        len(word) > MAX_LENGTH
        or not _ID.fullmatch(word)
        or (needs_digit and not any(c.isdigit() for c in word))
        or _STATUS_CODE.fullmatch(word)
    ):
        return None
    return word
