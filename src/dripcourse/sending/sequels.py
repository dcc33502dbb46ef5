"""What follows the end of a course, written in the transaction that finishes it: the completion
email (`completion.md`) and the enrolment in the next course (`[next] course`).

`finish` is what the ledger and the outcomes call instead of `queries.finish_enrollments`. A batch
costs a fixed number of statements, whatever its size: the finish (which returns the enrolments
it did finish, so a second worker that finishes the same one owes nothing), one read of those
enrolments with their courses, one INSERT of the completion emails, and for the next course one
read each of the courses, the suppressions and the enrolments already there, one INSERT of the
new enrolments and one of their audit entries. (A completion email still waiting from an earlier
finish, the course reopened by a lesson added before its slot, moves to the new slot.)

Consent carries over: the new enrolment starts without a confirmation email, its `source` says
`next-course`, it copies the finished one's consent evidence (the address and browser of the
sign-up and of the confirmation) and its custom field values, and the audit log says
where the consent came from. Nobody is enrolled whose address is suppressed, who already has an
enrolment in the next course (whatever its status: someone who left it is not brought back), or
whose next course is not synced (skipped and logged; `courses check` and `sync` warn).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text, tuple_
from sqlalchemy.orm import Session

from dripcourse.domain.policy import owed_delivery
from dripcourse.domain.sequel import NEXT_COURSE_SOURCE, carried_over, next_course_start
from dripcourse.domain.validation import address_hash
from dripcourse.domain.webhooks import Event, EventType, enrolment_data
from dripcourse.store.db import upsert_insert
from dripcourse.store.models import (
    AuditEntry,
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Subscriber,
    Suppression,
)
from dripcourse.store.outbox import emit
from dripcourse.store.queries import chunks, finish_enrollments, make_message_id

log = logging.getLogger(__name__)

SEQUEL_ACTOR = "dripcourse (course finished)"
"""Who the audit log says acted when finishing a course enrolled a person in the next one."""
AUDIT_ACTION = "subscribed"
"""A subscriber's page shows entries of this action (`app/audit.SUBSCRIBER_ACTIONS`)."""


def finish(session: Session, finished: Mapping[int, datetime], now: datetime) -> list[int]:
    """Finish these enrolments (each with the slot its next lesson would have had) and owe what
    follows; returns the ids finished now."""
    done = finish_enrollments(session, list(finished), now)
    if not done:
        return done
    rows = session.execute(
        select(Enrollment, Subscriber.email, Subscriber.timezone, Course)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .join(Course, Enrollment.course_id == Course.id)
        .where(Enrollment.id.in_(done))
    ).all()
    # The one place enrolments finish: `enrollment.completed` for those finished now (one INSERT
    # into the webhook outbox, none without an endpoint), before the events of the next course's
    # enrolment, so that a receiver hears them in that order.
    emit(
        session,
        [
            Event(
                EventType.ENROLLMENT_COMPLETED,
                enrollment.subscriber_id,
                enrolment_data(enrollment.subscriber_id, email, enrollment.id, course.slug),
            )
            for enrollment, email, _zone, course in rows
        ],
        now,
    )
    _owe_completions(session, rows, finished, now)
    _enrol_in_next(session, rows, finished, now)
    return done


def _owe_completions(
    session: Session, rows: Any, finished: Mapping[int, datetime], now: datetime
) -> None:
    owed = [
        owed_delivery(
            enrollment.id,
            None,
            DeliveryKind.COMPLETION,
            max(finished[enrollment.id], now),
            now,
            make_message_id(course),
        )
        for enrollment, _email, _zone, course in rows
        if course.settings.completion is not None
    ]
    insert_into = upsert_insert(session)
    table = Delivery.__table__.c
    for group in chunks(owed):
        # Once per enrolment (`uq_deliveries_completion_once`): a course finished again after a
        # lesson was added owes no second one. One still waiting from the first finish (the
        # lesson was added before its slot) moves to the new slot: it keeps the rhythm after the
        # new last lesson instead of going out with it.
        statement = insert_into(Delivery).values(list(group))
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["enrollment_id"],
                index_where=text("kind = 'completion'"),
                set_={
                    "due_at": statement.excluded.due_at,
                    "next_attempt_at": statement.excluded.next_attempt_at,
                },
                where=(table.status == DeliveryStatus.PENDING) & (table.attempts == 0),
            )
        )


def _enrol_in_next(
    session: Session, rows: Any, finished: Mapping[int, datetime], now: datetime
) -> None:
    wanted = [row for row in rows if row.Course.settings.next_course is not None]
    if not wanted:
        return
    slugs = {row.Course.settings.next_course for row in wanted}
    following = {
        course.slug: course
        for course in session.scalars(select(Course).where(Course.slug.in_(slugs)))
    }
    for slug in sorted(slugs - set(following)):
        log.warning("next course %r is not synced: those who finished are not enrolled in it", slug)
    wanted = [row for row in wanted if row.Course.settings.next_course in following]
    if not wanted:
        return
    hashes = {address_hash(row.email) for row in wanted}
    suppressed = set(
        session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes)))
    )
    pairs = {
        (row.Enrollment.subscriber_id, following[row.Course.settings.next_course].id)
        for row in wanted
    }
    present: set[tuple[int, int]] = set(
        (subscriber_id, course_id)
        for subscriber_id, course_id in session.execute(
            select(Enrollment.subscriber_id, Enrollment.course_id).where(
                tuple_(Enrollment.subscriber_id, Enrollment.course_id).in_(pairs)
            )
        )
    )
    new: list[dict[str, Any]] = []
    words: dict[tuple[int, int], tuple[str, str]] = {}
    for enrollment, email, zone, course in wanted:
        target = following[course.settings.next_course]
        if address_hash(email) in suppressed or (enrollment.subscriber_id, target.id) in present:
            continue
        new.append(
            {
                "subscriber_id": enrollment.subscriber_id,
                "course_id": target.id,
                "status": EnrollmentStatus.ACTIVE,
                "source": NEXT_COURSE_SOURCE,
                "created_at": now,
                # Started now (the timeline's "active since"); where the consent came from is in
                # the evidence copied below and in the audit entry.
                "confirmed_at": now,
                "next_due_at": next_course_start(
                    finished[enrollment.id],
                    now,
                    ZoneInfo(zone),
                    target.settings.rhythm,
                    after_completion=course.settings.completion is not None,
                    cohort=target.settings.cohort,
                ),
                "signup_ip": enrollment.signup_ip,
                "signup_user_agent": enrollment.signup_user_agent,
                "confirm_ip": enrollment.confirm_ip,
                "confirm_user_agent": enrollment.confirm_user_agent,
                "fields": dict(enrollment.fields or {}),
            }
        )
        words[(enrollment.subscriber_id, target.id)] = (
            email,
            carried_over(course.slug, target.slug),
        )
        present.add((enrollment.subscriber_id, target.id))  # one person finishing twice at once
    insert_into = upsert_insert(session)
    entries: list[dict[str, Any]] = []
    events: list[Event] = []
    slugs_by_id = {course.id: course.slug for course in following.values()}
    for group in chunks(new):
        # Another worker may enrol the same person at the same moment: the unique pair decides,
        # and only the rows written here get an audit entry and their webhook events.
        made = session.execute(
            insert_into(Enrollment)
            .values(list(group))
            .on_conflict_do_nothing(index_elements=["subscriber_id", "course_id"])
            .returning(Enrollment.id, Enrollment.subscriber_id, Enrollment.course_id)
        )
        for enrollment_id, subscriber_id, course_id in made:
            email, detail = words[(subscriber_id, course_id)]
            # Started at once, consent carried over: created and confirmed, as a sign-up made
            # with --confirmed announces itself.
            data = enrolment_data(subscriber_id, email, enrollment_id, slugs_by_id[course_id])
            events += [
                Event(EventType.SUBSCRIBER_CREATED, subscriber_id, data),
                Event(EventType.SUBSCRIBER_CONFIRMED, subscriber_id, data),
            ]
            entries.append(
                {
                    "at": now,
                    "actor": SEQUEL_ACTOR,
                    "action": AUDIT_ACTION,
                    "target": email,
                    "detail": detail,
                }
            )
    for group in chunks(entries):
        session.execute(insert(AuditEntry).values(list(group)))
    emit(session, events, now)
