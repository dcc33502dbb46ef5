"""The counts the dashboard reads (`store/tallies.py`) stay equal to a count over the rows, whatever
changes the rows: lessons sent and refused by a real SMTP server, a retry, a hard bounce read from a
mailbox, people leaving, pausing and being forgotten, a rolled-back transaction, compacting."""

from __future__ import annotations

import mailbox
from datetime import date, timedelta

import pytest
from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from test_report import (
    LESSON_ONE,
    LESSON_TWO,
    address,
    hard_bounce_of,
    received,
    tick,
    tracked,  # noqa: F401 - the fixture
)

from dripcourse.app import people, report, subscriptions
from dripcourse.app.bouncereports import Kind
from dripcourse.app.bounces import process_mailbox
from dripcourse.store import tallies
from dripcourse.store.models import (
    Course,
    Delivery,
    Enrollment,
    LessonTally,
    Subscriber,
    Suppression,
)

pytestmark = pytest.mark.both_databases


def counted_from_rows(session: Session) -> tuple[object, ...]:
    """The three counts as plain GROUP BYs over every row: the definitions the tallies keep."""

    def number_of(condition):
        return func.sum(case((condition, 1), else_=0))

    lessons = {
        lesson: (int(sent), int(failed), int(bounced))
        for lesson, sent, failed, bounced in session.execute(
            select(
                Delivery.lesson_id,
                number_of(Delivery.status == "sent"),
                number_of(Delivery.status == "failed"),
                number_of(Delivery.bounce == "hard"),
            )
            .where(Delivery.lesson_id.is_not(None), Delivery.kind.in_(["lesson", "extra"]))
            .group_by(Delivery.lesson_id)
        )
        if sent or failed or bounced
    }
    day = func.date(Delivery.sent_at)
    days = {
        date.fromisoformat(str(value)[:10]): count
        for value, count in session.execute(
            select(day, func.count()).where(Delivery.status == "sent").group_by(day)
        )
    }
    enrolments: dict[int, dict[str, int]] = {}
    for course, status, count in session.execute(
        select(Enrollment.course_id, Enrollment.status, func.count()).group_by(
            Enrollment.course_id, Enrollment.status
        )
    ):
        enrolments.setdefault(course, {})[status] = count
    owed_day = func.date(Enrollment.next_due_at)
    owed = {
        date.fromisoformat(str(value)[:10]): count
        for value, count in session.execute(
            select(owed_day, func.count())
            .where(Enrollment.status == "active", Enrollment.next_due_at.is_not(None))
            .group_by(owed_day)
        )
    }
    return lessons, days, enrolments, owed


def kept(session: Session) -> tuple[object, ...]:
    lesson_ids = session.scalars(select(LessonTally.lesson_id).distinct()).all()
    return (
        tallies.lesson_outcomes(session, lesson_ids),
        tallies.sent_per_day(session, date(2000, 1, 1)),
        tallies.enrollment_counts(session),
        tallies.owed_per_day(session, date(3000, 1, 1)),
    )


def left_by_definition(session: Session, course_id: int) -> dict[int, int]:
    """Who left after which lesson, by the query the report ran before the column kept it."""
    later = aliased(Delivery)
    kinds = ["lesson", "extra"]
    a_later_one = exists().where(
        later.enrollment_id == Delivery.enrollment_id,
        later.status == "sent",
        later.kind.in_(kinds),
        later.sent_at <= Enrollment.ended_at,
        or_(
            later.sent_at > Delivery.sent_at,
            and_(later.sent_at == Delivery.sent_at, later.id > Delivery.id),
        ),
    )
    bounced_out = exists().where(
        func.lower(Suppression.email) == Subscriber.email_key,
        Suppression.reason == "hard_bounce",
        Suppression.created_at <= Enrollment.ended_at,
    )
    rows = session.execute(
        select(Delivery.lesson_id, func.count())
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .where(
            Enrollment.course_id == course_id,
            Enrollment.status == "unsubscribed",
            Delivery.status == "sent",
            Delivery.kind.in_(kinds),
            Delivery.sent_at <= Enrollment.ended_at,
            ~a_later_one,
            ~bounced_out,
        )
        .group_by(Delivery.lesson_id)
    ).all()
    return {lesson: count for lesson, count in rows if lesson is not None}


def assert_exact(database) -> None:
    with database.read() as session:
        assert kept(session) == counted_from_rows(session)
        for course_id in session.scalars(select(Course.id)):
            assert report._left_after(session, course_id) == left_by_definition(session, course_id)


def test_the_counts_follow_every_change_of_the_rows(tracked, settings, clock, smtpd, tmp_path):  # noqa: F811
    assert Kind.HARD == tallies.HARD
    assert_exact(tracked)

    smtpd.fail_recipient(address("dmitri"))
    tick(tracked, settings, clock, LESSON_ONE)
    assert_exact(tracked)
    with tracked.read() as session:
        lessons, days, _, owed = kept(session)
    assert sorted(lessons.values()) == [(5, 1, 0)]
    assert days == {LESSON_ONE.date(): 5}
    assert owed == {LESSON_TWO.date(): 6}  # lesson 2, by all six: a refusal ends no course

    # A hard bounce of bruno's message: counted as bounced, and his enrolment ends.
    clock.set(LESSON_ONE + timedelta(days=1))
    folder = tmp_path / "Maildir"
    subject = next(str(m.message["Subject"]) for m in smtpd.messages)
    mailbox.Maildir(folder, create=True).add(hard_bounce_of(received(smtpd, "bruno", subject)))
    assert process_mailbox(tracked, folder, clock.now(), settings).hard == 1
    assert_exact(tracked)

    # People leave, pause and come back; a failed message is tried again and sent.
    with tracked.transaction() as session:
        ids = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
        now = clock.now()
        subscriptions.unsubscribe_enrollment(session, ids[address("chiara")], "runners", now)
        subscriptions.pause_enrollment(session, ids[address("emma")], "runners", now)
        session.execute(
            update(Delivery)
            .where(Delivery.status == "failed")
            .values(status="pending", next_attempt_at=now, attempts=0)
        )
    assert_exact(tracked)
    smtpd.fail_recipient(address("farid"))
    tick(tracked, settings, clock, LESSON_TWO)
    assert_exact(tracked)
    with tracked.read() as session:
        assert sum(report._left_after(session, 1).values()) == 1  # chiara

    # Emma comes back and leaves again after lesson two; farid leaves.
    clock.set(LESSON_TWO + timedelta(hours=1))
    with tracked.transaction() as session:
        now = clock.now()
        subscriptions.resume_enrollment(session, ids[address("emma")], "runners", now)
        subscriptions.unsubscribe_enrollment(session, ids[address("farid")], "runners", now)
    assert_exact(tracked)

    # What a rolled-back transaction changed is not counted.
    with pytest.raises(RuntimeError), tracked.transaction() as session:
        session.execute(update(Delivery).values(status="sent", sent_at=clock.now()))
        raise RuntimeError("rolled back")
    assert_exact(tracked)

    # Forgetting someone takes their deliveries and enrolments, and their counts, away.
    with tracked.transaction() as session:
        people.forget(session, address("ada"), clock.now(), actor="test")
    assert_exact(tracked)

    with tracked.transaction() as session:
        before = kept(session)
        tallies.compact(session)
    with tracked.read() as session:
        assert kept(session) == before
        assert session.scalar(select(func.count()).select_from(LessonTally)) == len(before[0])
    assert_exact(tracked)

    with tracked.transaction() as session:
        tallies.recount(session)
    with tracked.read() as session:
        assert kept(session) == before


@pytest.mark.both_databases
def test_the_schema_at_head_holds_the_triggers_the_code_describes(database):
    """A migration that rebuilds `deliveries` or `enrollments` (batch mode on SQLite) drops their
    triggers, and a change to `tallies.TALLIES` changes nothing in a database until a migration
    installs it: either would leave the counts drifting, silently. On SQLite the triggers at head
    must be these very statements."""
    with database.engine.connect() as connection:
        if database.dialect == "postgresql":
            found = set(
                connection.exec_driver_sql(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'tally_%%'"
                ).scalars()
            )
            described = {
                statement.split()[2]
                for statement in tallies._postgres_triggers()
                if statement.startswith("CREATE TRIGGER")
            }
        else:
            found = set(
                connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                ).scalars()
            )
            described = set(tallies._sqlite_triggers())
    assert found == described and found
