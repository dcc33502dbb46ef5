"""Builds the finished message: `multipart/alternative` (text, then HTML) with the list headers.

Headers are set through the stdlib `email` package, whose policy refuses a CR or LF in any header value,
so header injection is impossible by construction (and the values are single-line before they get here).
Lines may run to 998 characters (RFC 5322 2.1.1): with the default of 78 the stdlib would fold a long
unsubscribe URL into encoded-words that no mail client can follow.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a message is from and to, and the headers that identify it."""

    sender_name: str
    sender_email: str
    recipient_name: str
    recipient_email: str
    message_id: str
    date: datetime
    reply_to: str | None = None
    list_id: str | None = None
    """`Course Title <slug.domain>` (RFC 2919)."""
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None


def compose(envelope: Envelope, subject: str, text: str, html: str) -> bytes:
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(envelope.sender_name, addr_spec=envelope.sender_email)
    message["To"] = Address(envelope.recipient_name, addr_spec=envelope.recipient_email)
    message["Subject"] = subject
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = envelope.message_id
    if envelope.reply_to:
        message["Reply-To"] = envelope.reply_to
    if envelope.list_id:
        message["List-Id"] = envelope.list_id
    targets = [
        f"<{target}>"
        for target in (envelope.unsubscribe_url, envelope.unsubscribe_mailto)
        if target
    ]
    if targets:
        message["List-Unsubscribe"] = ", ".join(targets)
    if envelope.unsubscribe_url:
        # RFC 8058: the https URL accepts a POST with this body and unsubscribes in one click.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["MIME-Version"] = "1.0"
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message.as_bytes()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()
