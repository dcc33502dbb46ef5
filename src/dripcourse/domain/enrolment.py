"""The life of an enrolment: which change may happen in which state, where it leads, and what it
stamps on the way. Every module that moves an enrolment does it through `apply` (one object) or
with `Change.X.sources` and `stamps` (a statement over many), so the table below is the whole story.

    pending ──START──> active <──RESUME── paused
    unsubscribed ─┘      │ └────PAUSE────────^
    completed ────┘      ├──FINISH──> completed ──REOPEN──> active (a lesson was added)
                         └──LEAVE───> unsubscribed   (from any state)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dripcourse.domain.policy import SELF_LIFTED, WAITING_FOR_CONSENT
from dripcourse.domain.states import EnrollmentStatus

RUNNING = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)
"""In the course and not yet through it: the next lesson is owed (or held while paused)."""


@dataclass(frozen=True, slots=True)
class Rule:
    sources: tuple[EnrollmentStatus, ...]
    target: EnrollmentStatus


class Change(enum.Enum):
    START = Rule(WAITING_FOR_CONSENT, EnrollmentStatus.ACTIVE)
    """Consent given (a confirmed link, or added as confirmed): the rhythm (re)starts."""
    PAUSE = Rule((EnrollmentStatus.ACTIVE,), EnrollmentStatus.PAUSED)
    RESUME = Rule((EnrollmentStatus.PAUSED,), EnrollmentStatus.ACTIVE)
    LEAVE = Rule(
        tuple(s for s in EnrollmentStatus if s != EnrollmentStatus.UNSUBSCRIBED),
        EnrollmentStatus.UNSUBSCRIBED,
    )
    """Unsubscribed from the course (or from everything); asking again changes nothing."""
    FINISH = Rule(RUNNING, EnrollmentStatus.COMPLETED)
    """The last lesson went out (or was given up on)."""
    REOPEN = Rule((EnrollmentStatus.COMPLETED,), EnrollmentStatus.ACTIVE)
    """A lesson was added after the one they finished with."""

    @property
    def sources(self) -> tuple[EnrollmentStatus, ...]:
        return self.value.sources

    @property
    def target(self) -> EnrollmentStatus:
        return self.value.target

    def applies_to(self, status: EnrollmentStatus | str) -> bool:
        return status in self.value.sources


class EnrolmentState(Protocol):
    """What a change reads and writes: the stored enrolment has these attributes (its status is
    stored as the `EnrollmentStatus` string)."""

    status: str
    confirmed_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    next_due_at: datetime | None


def stamps(change: Change, now: datetime, next_due_at: datetime | None = None) -> dict[str, object]:
    """The columns a change sets besides the status (except `START`'s `confirmed_at`, which keeps
    the first consent: see `apply`)."""
    match change:
        case Change.START | Change.REOPEN:
            return {"ended_at": None, "next_due_at": next_due_at}
        case Change.PAUSE:
            return {"paused_at": now}
        case Change.RESUME:
            return {"paused_at": None}
        case Change.LEAVE | Change.FINISH:
            return {"ended_at": now, "next_due_at": None}


def apply(
    enrolment: EnrolmentState, change: Change, now: datetime, next_due_at: datetime | None = None
) -> bool:
    """Make `change` to one enrolment; False (and nothing changed) where it does not apply.

    `next_due_at` is when the first lesson of a (re)started rhythm is owed: `START` and `REOPEN`
    need it, computed by the caller from the course's rhythm and the person's zone."""
    if not change.applies_to(enrolment.status):
        return False
    if change in (Change.START, Change.REOPEN) and next_due_at is None:
        raise ValueError(f"{change.name} needs the instant the next lesson is due")
    enrolment.status = change.target
    for name, value in stamps(change, now, next_due_at).items():
        setattr(enrolment, name, value)
    if change is Change.START:
        enrolment.confirmed_at = enrolment.confirmed_at or now
    return True


class Admission(enum.Enum):
    """What adding a person to a course does: the one rule of `subscribe` and of the importer."""

    REFUSED = "refused"
    """Suppressed by a bounce, a complaint, an operator or an erasure: never mailed."""
    OWN_CONSENT_NEEDED = "own consent needed"
    """They left (the course, or all mail): only their own sign-up brings them back, so an
    operator cannot add them as confirmed."""
    ALREADY_IN = "already in"
    """Active or paused in the course: nothing to do."""
    START = "start"
    """Added as confirmed: the rhythm starts now."""
    ASK = "ask"
    """A confirmation email is asked for; nothing starts until they answer it."""


def admission(
    suppression: str | None, status: str | None, confirmed: bool, own_sign_up: bool = False
) -> Admission:
    """Whether and how a person may be (re)enrolled. `suppression` is the reason their address is
    suppressed, if it is; `status` that of their enrolment in this course, if they have one;
    `own_sign_up` that the person asks themselves, confirmed at once (a course without double
    opt-in): that brings back someone who left the course, but not someone who left all mail,
    who must answer a confirmation email."""
    if suppression is not None and suppression not in SELF_LIFTED:
        return Admission.REFUSED
    left = suppression is not None or (status == EnrollmentStatus.UNSUBSCRIBED and not own_sign_up)
    if confirmed and left:
        return Admission.OWN_CONSENT_NEEDED
    if status is not None and not Change.START.applies_to(status):
        return Admission.ALREADY_IN
    return Admission.START if confirmed else Admission.ASK
