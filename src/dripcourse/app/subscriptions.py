"""The operations people ask for: subscribe, confirm, unsubscribe, pause, resume, change, delete.

Each takes the session of the caller's transaction and never commits; the CLI and the HTTP API are thin
shells over these functions. Input is validated before anything is written.

The rules they share with the engine live in `domain.policy` and `store.queries`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.app.cohorts import resume_in_cohort, starting_due
from dripcourse.app.people import find_subscriber, get_subscriber, holder_of
from dripcourse.app.webhooks import announce
from dripcourse.courses.catalog import get_course
from dripcourse.domain.enrolment import RUNNING, Admission, Change, admission, apply
from dripcourse.domain.fields import check_values
from dripcourse.domain.policy import (
    CONFIRMATION_INTERVAL,
    CONFIRMATIONS_UNTIL_CONFIRMED,
    OPEN_DELIVERY,
    SELF_LIFTED,
    confirmation_slot,
)
from dripcourse.domain.schedule import resumed_due
from dripcourse.domain.sequel import NEXT_COURSE_SOURCE
from dripcourse.domain.validation import (
    check_timezone,
    clean_name,
    mailbox_key,
    normalise_email,
)
from dripcourse.domain.webhooks import EventType
from dripcourse.errors import BadInput, Conflict, NotFound
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Subscriber,
    SuppressionReason,
)
from dripcourse.store.queries import new_delivery, suppress, suppression_of
from dripcourse.telemetry.metrics import count_confirmation, count_signup


@dataclass(frozen=True)
class Evidence:
    """Where a request came from, kept as proof of consent."""

    ip: str | None = None
    user_agent: str | None = None

    def clipped(self) -> tuple[str | None, str | None]:
        return (self.ip or None) and self.ip[:45], (self.user_agent or None) and self.user_agent[
            :300
        ]


@dataclass(frozen=True)
class SubscribeResult:
    enrollment: Enrollment
    created: bool
    """A new enrolment was made (False: the person was enrolled in this course before)."""
    confirmation_queued: bool = False
    started: bool = False
    """This call started the course (a confirmed sign-up): the next lesson is now owed."""
    confirmation_due: datetime | None = None
    """When the queued confirmation goes out: now, or later when the mailbox had one lately."""
    confirmation_held: str = ""
    """Why no confirmation email was queued for a pending sign-up."""
    unsubscribed_before: bool = False
    """The address had unsubscribed from all mail: only the person's confirmation lifts it."""


def subscribe(
    session: Session,
    *,
    email: str,
    course_slug: str,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    confirmed: bool = False,
    source: str = "cli",
    evidence: Evidence | None = None,
    own_sign_up: bool = False,
    actor: str | None = None,
    fields: Mapping[str, object] | None = None,
) -> SubscribeResult:
    """Enrol a person. Confirmed: lesson 1 is owed at the next send slot; else a confirmation email.

    Without `confirmed` nothing about an existing person changes until they confirm: a stranger
    who types someone's address into a form can only cause one confirmation email an hour.
    Who may come back, and how, is `domain.enrolment.admission`; `own_sign_up` says the person
    asked themselves (a course without double opt-in), not an operator. `actor`: the operator
    who did it, for the audit log (None: the person themselves, or an import, which is audited
    whole). `fields`: the course's custom field values as given (checked by
    `domain.fields.check_values`); like a name, they change an existing enrolment only when
    `confirmed`.
    """
    address = normalise_email(email)
    clean = clean_name(name)
    zone = check_timezone(timezone) if timezone else None
    course = get_course(session, course_slug)
    found = suppression_of(session, address)
    subscriber = holder_of(session, address)
    enrollment = (
        None
        if subscriber is None
        else session.scalar(
            select(Enrollment).where(
                Enrollment.subscriber_id == subscriber.id, Enrollment.course_id == course.id
            )
        )
    )
    values = check_values(fields or {}, course.settings.fields, require=enrollment is None)
    decision = admission(
        found.reason if found else None,
        enrollment.status if enrollment else None,
        confirmed,
        own_sign_up=own_sign_up,
    )
    if decision is Admission.REFUSED:
        assert found is not None
        raise Conflict(f"{address} is suppressed ({found.reason}) and will not be mailed")
    if decision is Admission.OWN_CONSENT_NEEDED:
        left = "unsubscribed from all mail" if found else f"left {course.slug!r}"
        raise Conflict(
            f"{address} {left}; only their own confirmed sign-up "
            "can bring them back (subscribe without --confirmed to send a confirmation)"
        )

    if subscriber is None:
        subscriber = Subscriber(
            email=address,
            email_key=mailbox_key(address),
            name=clean,
            created_at=now,
            timezone=zone or course.settings.timezone,
        )
        session.add(subscriber)
        session.flush()
    elif confirmed:
        subscriber.name = clean or subscriber.name
        subscriber.timezone = zone or subscriber.timezone

    created = enrollment is None
    if enrollment is None:
        enrollment = Enrollment(
            subscriber=subscriber,
            course=course,
            created_at=now,
            status=EnrollmentStatus.PENDING,
            source=source,
            fields=values,
        )
        session.add(enrollment)
        session.flush()
        announce(session, EventType.SUBSCRIBER_CREATED, enrollment, now)
    elif confirmed and values:
        enrollment.fields = {**enrollment.fields, **values}
    if decision is not Admission.ALREADY_IN:
        count_signup(session, course.slug)
    if decision is Admission.ALREADY_IN:
        if created:
            _audit(session, now, actor, "subscribed", subscriber, course.slug)
        return SubscribeResult(enrollment=enrollment, created=created)
    if decision is Admission.START:
        activate(session, enrollment, now)
        _audit(session, now, actor, "subscribed", subscriber, f"{course.slug}, confirmed")
        return SubscribeResult(enrollment=enrollment, created=created, started=True)
    due, held = _confirmation_due(session, enrollment, now)
    if due is None:
        if created:
            _audit(session, now, actor, "subscribed", subscriber, course.slug)
        return SubscribeResult(enrollment=enrollment, created=created, confirmation_held=held)
    _audit(session, now, actor, "subscribed", subscriber, f"{course.slug}, confirmation email")
    enrollment.signup_ip, enrollment.signup_user_agent = (evidence or Evidence()).clipped()
    queue_confirmation(session, enrollment, due, now)
    return SubscribeResult(
        enrollment=enrollment,
        created=created,
        confirmation_queued=True,
        confirmation_due=due,
        unsubscribed_before=found is not None,
    )


def activate(session: Session, enrollment: Enrollment, now: datetime) -> None:
    """Start (or restart) the rhythm: the next lesson is owed at the first send slot from now.

    Confirmed by whatever route, the person no longer needs a confirmation email still waiting.
    """
    session.execute(
        update(Delivery)
        .where(
            Delivery.enrollment_id == enrollment.id,
            Delivery.kind == DeliveryKind.CONFIRMATION,
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.CANCELLED, last_error="confirmed by another route")
    )
    if apply(enrollment, Change.START, now, next_due_at=starting_due(session, enrollment, now)):
        announce(session, EventType.SUBSCRIBER_CONFIRMED, enrollment, now)


def confirm(
    session: Session,
    enrollment: Enrollment,
    now: datetime,
    evidence: Evidence | None = None,
    requested_at: datetime | None = None,
) -> bool:
    """Double opt-in: True if this (re)started the enrolment, False if it was running already.

    `requested_at` is when the confirmation link was made: a link from before the person left
    cannot bring them back (a mail scanner opening an old email must not undo an unsubscribe).
    """
    if not Change.START.applies_to(enrollment.status):
        return False
    if requested_at is not None and _left_after(session, enrollment, requested_at):
        raise Conflict(
            "this confirmation link is older than your unsubscribe; "
            "sign up again if you would like to come back"
        )
    # The person's own confirmed sign-up is the one thing that lifts their earlier unsubscribe.
    _lift_own_unsubscribe(session, enrollment.subscriber.email)
    enrollment.confirm_ip, enrollment.confirm_user_agent = (evidence or Evidence()).clipped()
    activate(session, enrollment, now)
    count_confirmation(session, enrollment.course.slug)
    return True


def confirm_by_link(
    session: Session,
    enrollment_id: int,
    now: datetime,
    evidence: Evidence | None = None,
    requested_at: datetime | None = None,
) -> Enrollment:
    """The confirmation link of an email: `confirm` the enrolment it names. `BadInput` if that is
    gone (the person was deleted, or forgotten): the link no longer leads anywhere."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise BadInput("this link is no longer valid: the sign-up it confirms has expired")
    confirm(session, enrollment, now, evidence, requested_at)
    return enrollment


def queue_confirmation(
    session: Session, enrollment: Enrollment, due: datetime, now: datetime
) -> Delivery:
    delivery = new_delivery(enrollment, None, DeliveryKind.CONFIRMATION, due, now)
    session.add(delivery)
    return delivery


def unsubscribe(
    session: Session,
    email: str,
    now: datetime,
    course_slug: str | None = None,
    reason: SuppressionReason = SuppressionReason.UNSUBSCRIBED,
    *,
    actor: str | None = None,
) -> list[Enrollment]:
    """Leave one course, or (no course) everything: the address is then suppressed too.
    `actor`: the operator who did it, for the audit log (None: the person themselves)."""
    subscriber = find_subscriber(session, email)
    enrollments = _enrollments(session, subscriber, course_slug)
    changed = [end_enrollment(session, enrollment, now) for enrollment in enrollments]
    if course_slug is None:
        suppress(session, subscriber.email, reason, now, detail="unsubscribed from everything")
    if any(changed) or course_slug is None:
        _audit(session, now, actor, "unsubscribed", subscriber, course_slug)
    return enrollments


def unsubscribe_by_link(
    session: Session, enrollment_id: int, now: datetime, everything: bool
) -> Enrollment | None:
    """The unsubscribe link of an email: leave that course, or everything. None if the enrolment is
    gone (the person was deleted): there is nothing left to unsubscribe, which is not an error."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None:
        return None
    if everything:
        unsubscribe(session, enrollment.subscriber.email, now)
    else:
        end_enrollment(session, enrollment, now)
        following = _carried_over_to(session, enrollment)
        if following is not None:
            # Enrolled on this course's consent (`[next] course`), announced by its last emails:
            # their unsubscribe link must not leave the next course's lessons coming.
            end_enrollment(session, following, now)
    return enrollment


def _carried_over_to(session: Session, enrollment: Enrollment) -> Enrollment | None:
    """The running enrolment in the course's next course that finishing this one made, if any."""
    slug = enrollment.course.settings.next_course
    if slug is None:
        return None
    return session.scalar(
        select(Enrollment)
        .join(Course, Enrollment.course_id == Course.id)
        .where(
            Course.slug == slug,
            Enrollment.subscriber_id == enrollment.subscriber_id,
            Enrollment.source == NEXT_COURSE_SOURCE,
            Enrollment.status.in_(RUNNING),
        )
    )


def end_enrollment(session: Session, enrollment: Enrollment, now: datetime) -> bool:
    """Leave the course; False when it had been left already (nothing changes then)."""
    changed = apply(enrollment, Change.LEAVE, now)
    if changed:
        announce(session, EventType.SUBSCRIBER_UNSUBSCRIBED, enrollment, now)
    session.execute(
        update(Delivery)
        .where(Delivery.enrollment_id == enrollment.id, Delivery.status.in_(OPEN_DELIVERY))
        .values(status=DeliveryStatus.CANCELLED, last_error="unsubscribed")
    )
    return changed


def pause(
    session: Session,
    email: str,
    now: datetime,
    course_slug: str | None = None,
    *,
    actor: str | None = None,
) -> list[Enrollment]:
    subscriber = find_subscriber(session, email)
    paused = _pause(subscriber, _enrollments(session, subscriber, course_slug), now, course_slug)
    _audit(session, now, actor, "paused", subscriber, course_slug)
    return paused


def resume(
    session: Session,
    email: str,
    now: datetime,
    course_slug: str | None = None,
    *,
    actor: str | None = None,
) -> list[Enrollment]:
    """Continue where they stopped: what was still to wait when paused is waited after resuming."""
    subscriber = find_subscriber(session, email)
    enrollments = _enrollments(session, subscriber, course_slug)
    resumed = _resume(session, subscriber, enrollments, now, course_slug)
    _audit(session, now, actor, "resumed", subscriber, course_slug)
    return resumed


def pause_enrollment(
    session: Session,
    subscriber_id: int,
    course_slug: str,
    now: datetime,
    *,
    actor: str | None = None,
) -> Enrollment:
    """`pause` for one enrolment, the person named by id (the operator API, the dashboard)."""
    subscriber = get_subscriber(session, subscriber_id)
    enrollments = _enrollments(session, subscriber, course_slug)
    paused = _pause(subscriber, enrollments, now, course_slug)[0]
    _audit(session, now, actor, "paused", subscriber, course_slug)
    return paused


def resume_enrollment(
    session: Session,
    subscriber_id: int,
    course_slug: str,
    now: datetime,
    *,
    actor: str | None = None,
) -> Enrollment:
    """`resume` for one enrolment, the person named by id (the operator API, the dashboard)."""
    subscriber = get_subscriber(session, subscriber_id)
    enrollments = _enrollments(session, subscriber, course_slug)
    resumed = _resume(session, subscriber, enrollments, now, course_slug)[0]
    _audit(session, now, actor, "resumed", subscriber, course_slug)
    return resumed


def unsubscribe_enrollment(
    session: Session,
    subscriber_id: int,
    course_slug: str,
    now: datetime,
    *,
    actor: str | None = None,
) -> Enrollment:
    """Leave one course, the person named by id. Their address is not suppressed: other courses
    go on. Asking again is not an error."""
    subscriber = get_subscriber(session, subscriber_id)
    [enrollment] = _enrollments(session, subscriber, course_slug)
    if end_enrollment(session, enrollment, now):
        _audit(session, now, actor, "unsubscribed", subscriber, course_slug)
    return enrollment


def _audit(
    session: Session,
    now: datetime,
    actor: str | None,
    action: str,
    subscriber: Subscriber,
    course_slug: str | None,
) -> None:
    """The audit entry of a change an operator made (none for what a person does themselves)."""
    if actor is not None:
        scope = f"course {course_slug}" if course_slug else "every course"
        audit.record(session, now, actor, action, subscriber.email, scope)


def _shift_for_pause(
    session: Session, enrollment: Enrollment, paused_at: datetime, now: datetime
) -> None:
    """What was still to wait at the pause is waited after it: the next lesson and whatever is
    pending in the ledger move by the length of the pause. In a cohort course the lessons go back
    onto the cohort's dates instead (`cohorts.resume_in_cohort`); other messages still move."""
    in_cohort = resume_in_cohort(session, enrollment, now)
    zone, rhythm = _zone(enrollment), enrollment.course.settings.rhythm
    if enrollment.next_due_at is not None and not in_cohort:
        enrollment.next_due_at = resumed_due(enrollment.next_due_at, paused_at, now, zone, rhythm)
    for delivery in session.scalars(
        select(Delivery).where(
            Delivery.enrollment_id == enrollment.id, Delivery.status == DeliveryStatus.PENDING
        )
    ):
        if in_cohort and delivery.kind == DeliveryKind.LESSON:
            continue
        delivery.next_attempt_at = resumed_due(
            delivery.next_attempt_at, paused_at, now, zone, rhythm
        )


def _pause(
    subscriber: Subscriber, enrollments: list[Enrollment], now: datetime, course_slug: str | None
) -> list[Enrollment]:
    changed = []
    for enrollment in enrollments:
        if apply(enrollment, Change.PAUSE, now):
            changed.append(enrollment)
    if not changed:
        where = f"in {course_slug!r}" if course_slug else "in any course"
        raise Conflict(f"{subscriber.email} is not active {where}, nothing to pause")
    return changed


def _resume(
    session: Session,
    subscriber: Subscriber,
    enrollments: list[Enrollment],
    now: datetime,
    course_slug: str | None,
) -> list[Enrollment]:
    changed = []
    for enrollment in enrollments:
        paused_at = enrollment.paused_at
        if not Change.RESUME.applies_to(enrollment.status) or paused_at is None:
            continue
        # A pause dated later than this resume had not begun: nothing was held, nothing moves.
        if now > paused_at:
            _shift_for_pause(session, enrollment, paused_at, now)
        apply(enrollment, Change.RESUME, now)
        changed.append(enrollment)
    if not changed:
        where = f"in {course_slug!r}" if course_slug else "in any course"
        raise Conflict(f"{subscriber.email} is not paused {where}, nothing to resume")
    return changed


def _enrollments(
    session: Session, subscriber: Subscriber, course_slug: str | None
) -> list[Enrollment]:
    if course_slug is None:
        return list(subscriber.enrollments)
    course = get_course(session, course_slug)
    found = [e for e in subscriber.enrollments if e.course_id == course.id]
    if not found:
        raise NotFound(f"{subscriber.email} is not enrolled in {course_slug!r}")
    return found


def _lift_own_unsubscribe(session: Session, address: str) -> None:
    found = suppression_of(session, address)
    if found is not None and found.reason in SELF_LIFTED:
        session.delete(found)


def _left_after(session: Session, enrollment: Enrollment, instant: datetime) -> bool:
    """Did the person leave this course, or all mail, at or after `instant`?"""
    left = [enrollment.ended_at] if enrollment.status == EnrollmentStatus.UNSUBSCRIBED else []
    suppression = suppression_of(session, enrollment.subscriber.email)
    if suppression is not None:
        left.append(suppression.created_at)
    return any(moment is not None and moment >= instant for moment in left)


def _confirmation_due(
    session: Session, enrollment: Enrollment, now: datetime
) -> tuple[datetime | None, str]:
    """When this sign-up's confirmation may go out, or (None, why) when none is queued.

    Each course gets its own confirmation, from its own sender; the limits are the mailbox's,
    over every course. A sign-up within the hour of another is confirmed a little later, not
    dropped (`confirmation_slot`).
    """
    subscriber_id = enrollment.subscriber_id
    since = session.scalar(
        select(func.max(Enrollment.confirmed_at)).where(Enrollment.subscriber_id == subscriber_id)
    )
    rows = session.execute(
        select(Delivery.enrollment_id, Delivery.status, Delivery.due_at)
        .join(Enrollment)
        .where(
            Enrollment.subscriber_id == subscriber_id,
            Delivery.kind == DeliveryKind.CONFIRMATION,
            # Cancelled ones never reached the mailbox.
            Delivery.status != DeliveryStatus.CANCELLED,
            *([Delivery.created_at > since] if since is not None else []),
        )
    ).all()
    mine = [row for row in rows if row.enrollment_id == enrollment.id]
    if any(row.status in OPEN_DELIVERY for row in mine):
        return None, "a confirmation email for this course is waiting to go out"
    if any(row.due_at > now - CONFIRMATION_INTERVAL for row in mine):
        # Asking again at once is answered by the email just sent, not by a second one later.
        return None, "a confirmation email for this course went out within the hour"
    due = confirmation_slot([row.due_at for row in rows], now)
    if due is None:
        return None, f"{CONFIRMATIONS_UNTIL_CONFIRMED} confirmation emails went unanswered"
    return due, ""


def _zone(enrollment: Enrollment) -> ZoneInfo:
    return ZoneInfo(enrollment.subscriber.timezone)
