""" "Retry now" against a real database and a real SMTP server: a failed or retrying lesson goes
out once when retried, never twice, and whoever may no longer be mailed is refused with the reason.
Bounces and complaints read from the mailbox are in the audit log, beside the retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from test_bounces import arf, dsn, maildir

from dripcourse.app import audit, bounces, lessons, people, subscriptions
from dripcourse.app.deliveries import in_trouble, retry_now
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.errors import Conflict, NotFound
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.sending.ledger import claim
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Lesson

pytestmark = pytest.mark.both_databases

ADA = "ada@example.com"
LESSON_ONE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in Toronto
LESSON_TWO = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 08:00 in Toronto, after the DST change
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ACTOR = audit.operator_actor("ed@clinic.example")


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """A retry window of ten minutes: the second failed attempt gives up."""
    return settings.with_overrides(retry_give_up_after=600)


def enrol(database: Database, clock: FixedClock, email: str = ADA) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name="Ada Lovelace",
            timezone="America/Toronto",
            confirmed=True,
            now=clock.now(),
        )


def tick(database: Database, settings: Settings, clock: FixedClock, at: datetime) -> None:
    clock.set(at)
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def lesson_one(database: Database) -> Delivery:
    with database.read() as session:
        return session.scalars(select(Delivery).where(Delivery.kind == "lesson")).one()


def retry(database: Database, delivery_id: int, at: datetime) -> None:
    with database.transaction() as session:
        retry_now(session, delivery_id, at, actor=ACTOR)


def subjects(smtpd: CapturingSMTPServer, email: str = ADA) -> list[str]:
    return [str(m.message["Subject"]) for m in smtpd.messages if email in m.rcpt_tos]


def gave_up(database: Database, settings: Settings, clock: FixedClock, smtpd) -> Delivery:
    """Ada's lesson 1, refused with 451 until the retry window closed: failed, not suppressed."""
    enrol(database, clock)
    smtpd.fail_recipient(ADA, 451, "4.2.0 <ada@example.com>: try again later")
    tick(database, settings, clock, LESSON_ONE)
    tick(database, settings, clock, LESSON_ONE + timedelta(minutes=10))
    smtpd.reset()
    failed = lesson_one(database)
    assert failed.status == "failed" and failed.attempts == 2
    return failed


def test_a_lesson_that_gave_up_goes_out_once_when_retried_and_the_rhythm_goes_on(
    synced, quick, clock, smtpd
):
    failed = gave_up(synced, quick, clock, smtpd)
    with synced.read() as session:
        [shown] = in_trouble(session).rows
    assert (shown.email, shown.status, shown.attempts, shown.smtp_code) == (ADA, "failed", 2, 451)
    assert "try again later" in shown.last_error and shown.next_attempt_at is None

    now = LESSON_ONE + timedelta(hours=2)
    retry(synced, failed.id, now)
    retried = lesson_one(synced)
    assert (retried.status, retried.attempts) == ("pending", 2)  # the count stays true
    tick(synced, quick, clock, now)
    tick(synced, quick, clock, now + timedelta(minutes=1))
    assert [s.split(":")[0] for s in subjects(smtpd)] == ["Lesson 1"]
    assert lesson_one(synced).status == "sent"
    with synced.read() as session:
        assert in_trouble(session).rows == []
        [entry] = audit.entries(session, target=ADA, actions=audit.SUBSCRIBER_ACTIONS)
    assert (entry.actor, entry.action) == (ACTOR, "delivery retried")
    assert "lesson 1 (" in entry.detail and "of runners" in entry.detail

    with pytest.raises(Conflict, match="already sent"):
        retry(synced, failed.id, now + timedelta(minutes=2))
    tick(synced, quick, clock, LESSON_TWO + timedelta(days=1))
    assert [s.split(":")[0] for s in subjects(smtpd)] == ["Lesson 1", "Lesson 2"]


def test_a_retrying_lesson_is_made_due_now_and_sent_once(synced, settings, clock, smtpd):
    enrol(synced, clock)
    smtpd.fail_next(1, 451)
    tick(synced, settings, clock, LESSON_ONE)
    waiting = lesson_one(synced)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.next_attempt_at > LESSON_ONE + timedelta(minutes=1)
    with synced.read() as session:
        [shown] = in_trouble(session).rows
    assert shown.status == "pending" and shown.next_attempt_at == waiting.next_attempt_at

    now = LESSON_ONE + timedelta(minutes=1)
    retry(synced, waiting.id, now)
    tick(synced, settings, clock, now)
    tick(synced, settings, clock, now + timedelta(hours=1))  # its old retry time: nothing more
    assert [s.split(":")[0] for s in subjects(smtpd)] == ["Lesson 1"]


def test_a_delivery_being_sent_is_refused(synced, settings, clock, smtpd):
    enrol(synced, clock)
    smtpd.fail_next(1, 451)
    tick(synced, settings, clock, LESSON_ONE)
    later = LESSON_ONE + timedelta(hours=1)
    with synced.transaction() as session:
        [job] = claim(session, later, "another worker", 10, timedelta(minutes=5))
    with pytest.raises(Conflict, match="being sent"):
        retry(synced, job.delivery_id, later)
    with synced.read() as session:
        leased = session.get(Delivery, job.delivery_id)
        assert leased is not None
        assert (leased.status, leased.lease_owner) == ("sending", "another worker")


def test_a_hard_bounce_suppresses_and_its_delivery_is_not_retried(synced, settings, clock, smtpd):
    enrol(synced, clock)
    smtpd.fail_recipient(ADA, 550)
    tick(synced, settings, clock, LESSON_ONE)
    failed = lesson_one(synced)
    assert failed.status == "failed"
    with pytest.raises(Conflict, match="may not be mailed: suppressed after a hard bounce"):
        retry(synced, failed.id, LESSON_ONE + timedelta(hours=1))
    assert lesson_one(synced).status == "failed"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (subscriptions.unsubscribe_enrollment, "is unsubscribed in runners"),
        (
            subscriptions.pause_enrollment,
            "is paused in runners; a lesson in the rhythm is not sent",
        ),
    ],
)
def test_someone_who_may_not_be_mailed_is_refused(synced, quick, clock, smtpd, change, says):
    failed = gave_up(synced, quick, clock, smtpd)
    with synced.transaction() as session:
        enrollment = session.scalars(select(Enrollment)).one()
        change(session, enrollment.subscriber_id, "runners", clock.now(), actor=ACTOR)
    with pytest.raises(Conflict, match=says):
        retry(synced, failed.id, clock.now())
    tick(synced, quick, clock, clock.now() + timedelta(hours=1))
    assert subjects(smtpd) == []


def test_a_lesson_that_went_out_as_a_queued_copy_is_not_sent_again(synced, quick, clock, smtpd):
    failed = gave_up(synced, quick, clock, smtpd)
    now = LESSON_ONE + timedelta(hours=1)
    with synced.transaction() as session:
        lessons.queue_lesson(session, "runners", "1", now, to=ADA, actor=ACTOR, now=now)
    tick(synced, quick, clock, now)
    assert len(subjects(smtpd)) == 1
    with pytest.raises(Conflict, match="another copy of it was already sent"):
        retry(synced, failed.id, now + timedelta(minutes=1))


def test_what_was_never_tried_or_does_not_exist_is_refused(synced, settings, clock, smtpd):
    enrol(synced, clock)
    with pytest.raises(NotFound, match="no delivery with id 99"):
        retry(synced, 99, LESSON_ONE)
    queued_at = LESSON_ONE + timedelta(days=2)
    with synced.transaction() as session:
        lessons.queue_lesson(session, "runners", "2", queued_at, to=ADA, actor=ACTOR, now=START)
        owed = session.scalars(select(Delivery.id)).one()
    with pytest.raises(Conflict, match="has not been tried yet"):
        retry(synced, owed, LESSON_ONE)


def test_bounces_and_complaints_from_the_mailbox_are_in_the_audit_log(
    synced, settings, clock, smtpd, tmp_path
):
    enrol(synced, clock)
    enrol(synced, clock, "bruno@example.com")
    tick(synced, settings, clock, LESSON_ONE)
    by_rcpt = {m.rcpt_tos[0]: m for m in smtpd.messages}
    ada, bruno = by_rcpt[ADA], by_rcpt["bruno@example.com"]
    folder = maildir(
        tmp_path,
        dsn(ada.mail_from, ada.message),
        arf(bruno.mail_from, bruno.message),
    )
    bounces.process_mailbox(synced, folder, LESSON_ONE + timedelta(hours=1), settings)
    with synced.read() as session:
        [bounced] = audit.entries(session, target=ADA, actions=audit.SUBSCRIBER_ACTIONS)
        [complained] = audit.entries(
            session, target="bruno@example.com", actions=audit.SUBSCRIBER_ACTIONS
        )
    assert (bounced.actor, bounced.action) == ("bounce mailbox", "bounced")
    assert bounced.detail.startswith("hard bounce about lesson 1 (")
    assert (complained.actor, complained.action) == ("bounce mailbox", "complained")
    assert complained.detail == "complaint about lesson 1 (feet) of runners"

    # The server's words quote the address: they stay out of the log, which outlives a
    # forgotten person.
    with synced.transaction() as session:
        people.forget(session, ADA, LESSON_ONE + timedelta(hours=2), actor=ACTOR)
    with synced.read() as session:
        written = [(e.actor, e.action, e.target, e.detail) for e in audit.entries(session)]
    assert written and not [entry for entry in written if "ada" in " ".join(entry).lower()]


def test_paging_goes_through_every_failure_once_newest_first(synced, settings, clock, smtpd):
    people = [f"p{n:02d}@example.com" for n in range(7)]
    for email in people:
        enrol(synced, clock, email)
        smtpd.fail_recipient(email, 550)
    tick(synced, settings, clock, LESSON_ONE)
    seen, before = [], None
    while True:
        with synced.read() as session:
            page = in_trouble(session, before=before, limit=3)
        seen += [row.delivery_id for row in page.rows]
        if page.after is None:
            break
        before = page.after
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 7


def test_an_old_failure_retried_after_the_next_lesson_went_out_sends_nothing_twice(
    synced, quick, clock, smtpd
):
    failed = gave_up(synced, quick, clock, smtpd)
    tick(synced, quick, clock, LESSON_TWO)
    assert [s.split(":")[0] for s in subjects(smtpd)] == ["Lesson 2"]
    now = LESSON_TWO + timedelta(days=1)
    retry(synced, failed.id, now)
    for day in range(0, 22):
        tick(synced, quick, clock, now + timedelta(days=day, minutes=1))
    # Each lesson once, and the rhythm goes on weekly: no burst after the late lesson 1.
    got = [s.split(":")[0] for s in subjects(smtpd)]
    assert got == ["Lesson 2", "Lesson 1", "Lesson 3", "Lesson 4", "Lesson 5"]


def test_a_lesson_retired_from_the_course_is_not_retried(synced, quick, clock, smtpd):
    failed = gave_up(synced, quick, clock, smtpd)
    with synced.transaction() as session:
        session.execute(
            update(Lesson).where(Lesson.id == failed.lesson_id).values(retired_at=clock.now())
        )
    with pytest.raises(Conflict, match="that lesson was retired from the course"):
        retry(synced, failed.id, clock.now())
