"""Who may be mailed, and when: the rules the operations and the engine share, written once.

Plain data and functions over it, free of I/O: what counts as an open delivery, what an owed
delivery looks like when it is made, which enrolments a sign-up restarts, which suppressions the
person may lift, and how often a mailbox that has not confirmed may get a confirmation email.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dripcourse.domain.states import (
    DeliveryKind,
    DeliveryStatus,
    EnrollmentStatus,
    SuppressionReason,
)

OPEN_DELIVERY = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
# A lesson an enrolment has had, in the rhythm: sent, or given up on (it is not owed again, and
# the next one follows it). This is what "history" means in `schedule.next_lesson`.
HAD = (DeliveryStatus.SENT, DeliveryStatus.FAILED)


def owed_delivery(
    enrollment_id: int,
    lesson_id: int | None,
    kind: str,
    due_at: datetime,
    now: datetime,
    message_id: str,
) -> dict[str, Any]:
    """The row of a delivery that is owed from `due_at` on: pending, first tried when it is due,
    never attempted yet. Every maker of a delivery (a sign-up's confirmation, a lesson whose time
    has come, an import, a queued extra) starts from this row."""
    return {
        "enrollment_id": enrollment_id,
        "lesson_id": lesson_id,
        "kind": kind,
        "status": DeliveryStatus.PENDING,
        "due_at": due_at,
        "next_attempt_at": due_at,
        "attempts": 0,
        "created_at": now,
        "message_id": message_id,
    }


# Enrolments that a new sign-up (re)starts once the person confirms it.
WAITING_FOR_CONSENT = (
    EnrollmentStatus.PENDING,
    EnrollmentStatus.UNSUBSCRIBED,
    EnrollmentStatus.COMPLETED,
)
# Suppressions that only the person's own new, explicit sign-up may lift.
SELF_LIFTED = (SuppressionReason.UNSUBSCRIBED,)

# Which enrolments a delivery of each kind may go to: the claim (`sending/ledger.SENDABLE`) picks
# up nothing else, and an operator's "retry now" (`app/deliveries`) refuses what it would not.
# Paused and ended enrolments keep their deliveries, but nobody sends them.
SENDABLE_WHILE: dict[DeliveryKind, tuple[EnrollmentStatus, ...]] = {
    DeliveryKind.CONFIRMATION: WAITING_FOR_CONSENT,
    DeliveryKind.LESSON: (EnrollmentStatus.ACTIVE,),
    DeliveryKind.EXTRA: (EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED),
    # The closing email is owed at the finish, so only to an enrolment that is still completed.
    DeliveryKind.COMPLETION: (EnrollmentStatus.COMPLETED,),
}


def blocked_by(kind: str, suppression: str | None) -> bool:
    """Whether a suppression of the address stops a delivery of `kind`: every one does, but a
    confirmation was asked for by the person, even after an earlier unsubscribe."""
    if suppression is None:
        return False
    return not (kind == DeliveryKind.CONFIRMATION and suppression in SELF_LIFTED)


# However often a form names an address, until that mailbox confirms it gets at most one
# confirmation email an hour, two a day and five in all: a stranger cannot mail-bomb it.
CONFIRMATION_INTERVAL = timedelta(hours=1)
CONFIRMATIONS_A_DAY = 2
CONFIRMATIONS_UNTIL_CONFIRMED = 5


def confirmation_slot(asked: list[datetime], now: datetime) -> datetime | None:
    """When the next confirmation email may reach a mailbox that was sent (or will be sent) one
    at each of `asked` since it last confirmed: at least an hour after the last, a day after the
    one before it, never more than five in all (None)."""
    if len(asked) >= CONFIRMATIONS_UNTIL_CONFIRMED:
        return None
    earliest = [now]
    ordered = sorted(asked)
    if ordered:
        earliest.append(ordered[-1] + CONFIRMATION_INTERVAL)
    if len(ordered) >= CONFIRMATIONS_A_DAY:
        earliest.append(ordered[-CONFIRMATIONS_A_DAY] + timedelta(days=1))
    return max(earliest)
