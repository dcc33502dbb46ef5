"""What is due now and has not gone yet: the backlog an operator's dashboard (Prometheus) watches.

Counted the way the dispatcher sizes a pass: running enrolments whose next lesson is owed, and
deliveries waiting for their (next) attempt. The age is that of the oldest of them: how long the
mail has been late, which a pass that keeps up holds under the dispatch interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dripcourse.store.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus


@dataclass(frozen=True)
class Backlog:
    due: int
    oldest_due_at: datetime | None

    def oldest_age_seconds(self, now: datetime) -> float:
        if self.oldest_due_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_due_at).total_seconds())


def backlog(session: Session, now: datetime) -> Backlog:
    owed_count, owed_oldest = session.execute(
        select(func.count(), func.min(Enrollment.next_due_at)).where(
            Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at <= now
        )
    ).one()
    waiting_count, waiting_oldest = session.execute(
        select(func.count(), func.min(Delivery.due_at)).where(
            Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now
        )
    ).one()
    oldest = [at for at in (owed_oldest, waiting_oldest) if at is not None]
    return Backlog(
        due=(owed_count or 0) + (waiting_count or 0),
        oldest_due_at=_aware(min(oldest)) if oldest else None,
    )


def _aware(instant: datetime) -> datetime:
    # In case a dialect hands back an aggregate of the column without its type applied.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
