"""The provider events already applied: each (provider, event id) once, so that a provider's
retry, or an attacker's replay of a verified event, changes nothing the second time.

Kept apart from `models.py` (which is long enough), on the same `Base`; `models.py` imports this
module at its end, so the table is always in the metadata (migrations, transfer, forget).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dripcourse.store.models import Base


class ProviderEvent(Base):
    """One event received at `POST /hooks/<provider>` and verified: a bounce, a complaint, or an
    event we do not act on (a delivery), with what became of it (`app/provider_events.py`)."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    """The provider's own id of the event (SNS MessageId, Mailgun event id, SendGrid
    sg_event_id, Postmark record type and ID)."""
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    """Indexed: rows older than the replay window may be removed, since an event that old is
    refused by its timestamp anyway."""
