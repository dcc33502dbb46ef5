"""The states of enrolments and deliveries and the reasons for a suppression: the domain's
vocabulary, stored as these strings (`store.models` columns hold them)."""

from __future__ import annotations

import enum

from dripcourse.errors import BadInput


class EnrollmentStatus(enum.StrEnum):
    PENDING = "pending"
    """Signed up, not yet confirmed (double opt-in)."""
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    UNSUBSCRIBED = "unsubscribed"


def parse_enrollment_status(text: str) -> EnrollmentStatus:
    """The status named by `text`, or `BadInput` naming the ones there are (a filter typed in a
    form, a URL or on the command line)."""
    try:
        return EnrollmentStatus(text)
    except ValueError:
        known = ", ".join(status.value for status in EnrollmentStatus)
        raise BadInput(f"unknown status {text[:32]!r}; known: {known}", field="status") from None


class DeliveryKind(enum.StrEnum):
    LESSON = "lesson"
    """The lesson owed in the course's rhythm: at most one per enrolment and lesson."""
    EXTRA = "extra"
    """A lesson an operator queued outside the rhythm (`lessons queue`)."""
    CONFIRMATION = "confirmation"
    """The double opt-in email."""
    COMPLETION = "completion"
    """The course's closing email, once the last lesson went out (at most one per enrolment)."""


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    """Claimed by a worker until `lease_expires_at`."""
    SENT = "sent"
    FAILED = "failed"
    """Permanently refused, or temporary failures for longer than the retry policy allows."""
    CANCELLED = "cancelled"
    """Not sent: the person unsubscribed, was suppressed, or the lesson was retired."""


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    FORGOTTEN = "forgotten"
    """The person asked to be forgotten (`subscribers forget`): only the address's hash is kept."""
