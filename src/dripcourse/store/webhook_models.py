"""The models of outgoing webhooks: the endpoints (configured in the settings or added with
`dripcourse webhooks add`) and the outbox, one row per event and endpoint, written in the
transaction of the change it tells of and delivered by the dispatcher (`sending/webhooks`).

Kept apart from `models.py` (which it extends: same `Base`, same migrations) for size alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dripcourse.store.models import Base


class WebhookStatus:
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Given up on after the last retry."""


UNDELIVERED = (WebhookStatus.PENDING, WebhookStatus.SENDING)


class WebhookOrigin:
    SETTINGS = "settings"
    """From `DRIPCOURSE_WEBHOOK_URLS`; kept in step with the settings, not removable by hand."""
    COMMAND = "command"
    """Added with `dripcourse webhooks add`."""


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[str] = mapped_column(Text, default="")
    """The event types it wants, comma-separated; empty: all of them."""
    origin: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class WebhookMessage(Base):
    """One event for one endpoint: its fixed body and `webhook-id`, and its delivery's fate."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "message_id"),
        Index("ix_webhook_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # "Is an earlier event of this person still undelivered to this endpoint?" (the order).
        Index(
            "ix_webhook_messages_endpoint_id_subscriber_id_id", "endpoint_id", "subscriber_id", "id"
        ),
        Index("ix_webhook_messages_last_attempt_at", "last_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    """The `webhook-id` header: the same on every attempt, and for every endpoint of one event."""
    event_type: Mapped[str] = mapped_column(String(40))
    subscriber_id: Mapped[int | None] = mapped_column(index=True)
    """No foreign key: the event of a person who was then forgotten must still go out."""
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(250))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
