"""Amazon SES bounce and complaint notifications, as SNS delivers them (`sns.py` verifies them).

The notification's content is documented at
https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html: a `notificationType` (or
`eventType`, when it comes from event publishing) of Bounce, Complaint or Delivery; `bounce.
bounceType` Permanent (a hard bounce), Transient or Undetermined (counted as soft: SES could not
tell, and a soft bounce suppresses only at `soft_bounce_limit`); `mail.messageId`, SES's own id,
which its SMTP relay answered at send time (`250 Ok <id>`, `Delivery.provider_id`); and our
Message-ID in `mail.commonHeaders.messageId` or `mail.headers`, when SES includes them.
"""

from __future__ import annotations

from typing import Any

from dripcourse.app.bouncereports import Kind, Report, message_id_of
from dripcourse.app.providers import Event, load_json, mapping, recipient, text
from dripcourse.app.providers.sns import SnsMessage
from dripcourse.domain.provider_ids import from_reply

_BOUNCE_KINDS = {"Permanent": Kind.HARD, "Transient": Kind.SOFT, "Undetermined": Kind.SOFT}


def read_notification(message: SnsMessage) -> Event:
    """The event in a verified SNS Notification (its MessageId is the key)."""
    keys = (f"sns:{message.message_id}",)
    try:
        content = load_json(message.message.encode("utf-8"))
    except ValueError:
        return Event(keys, None, "malformed")
    if not isinstance(content, dict):
        return Event(keys, None, "malformed")
    kind_name = content.get("notificationType") or content.get("eventType")
    if kind_name == "Bounce":
        bounce = mapping(content.get("bounce"))
        kind = _BOUNCE_KINDS.get(str(bounce.get("bounceType")), Kind.SOFT)
        detail = _bounce_detail(bounce)
        address = _first_recipient(bounce.get("bouncedRecipients"))
    elif kind_name == "Complaint":
        complaint = mapping(content.get("complaint"))
        kind = Kind.COMPLAINT
        address = _first_recipient(complaint.get("complainedRecipients"))
        feedback = text(complaint.get("complaintFeedbackType"), 40) or "no feedback type"
        detail = f"complaint ({feedback}) reported by Amazon SES"
    else:
        return Event(keys, None, text(kind_name, 16).lower() or "malformed")
    mail = mapping(content.get("mail"))
    report = Report(
        kind=kind,
        addresses=[],
        message_ids=_message_ids(mail),
        detail=detail,
        provider_id=_provider_id(mail.get("messageId")),
        recipient=address,
    )
    return Event(keys, report)


def _bounce_detail(bounce: dict[str, Any]) -> str:
    recipients = bounce.get("bouncedRecipients")
    first = mapping(recipients[0]) if isinstance(recipients, list) and recipients else {}
    parts = [
        text(bounce.get("bounceType"), 20),
        text(bounce.get("bounceSubType"), 40),
        text(first.get("status"), 20),
        text(first.get("diagnosticCode"), 300),
    ]
    return ("Amazon SES: " + " ".join(part for part in parts if part))[:500]


def _first_recipient(recipients: Any) -> str | None:
    # Each of our messages has one recipient, so the first named is the one.
    if not isinstance(recipients, list) or not recipients:
        return None
    return recipient(mapping(recipients[0]).get("emailAddress"))


def _message_ids(mail: dict[str, Any]) -> list[str]:
    found = [message_id_of(mapping(mail.get("commonHeaders")).get("messageId"))]
    headers = mail.get("headers")
    if isinstance(headers, list):
        found.extend(
            message_id_of(mapping(header).get("value"))
            for header in headers[:200]
            if str(mapping(header).get("name", "")).lower() == "message-id"
        )
    return list(dict.fromkeys(each for each in found if each is not None))


def _provider_id(value: Any) -> str | None:
    # The same rule as for the relay's reply that recorded it.
    return from_reply(value) if isinstance(value, str) and " " not in value else None
