"""The dispatcher against a real database (SQLite, and PostgreSQL when its URL is given) and a real
SMTP server: who gets which lesson when."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.backends.base import DeliveryResult, Outcome
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher, PassReport, Sent
from dripcourse.sending.ledger import claim, materialise_due, still_wanted
from dripcourse.sending.outcomes import record_outcomes
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Suppression

# The ledger logic runs on SQLite, and on PostgreSQL when DRIPCOURSE_TEST_POSTGRES_URL is set.
pytestmark = pytest.mark.both_databases

ADA = ("ada@example.com", "Ada Lovelace", "America/Toronto")
BRUNO = ("bruno@example.com", "Bruno Schulz", "Europe/Berlin")


def enrol(database: Database, clock: FixedClock, person: tuple[str, str, str]) -> None:
    email, name, zone = person
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name=name,
            timezone=zone,
            confirmed=True,
            now=clock.now(),
        )


@dataclass
class Ticked:
    report: PassReport
    outcomes: list[Sent]

    def count(self, status: str) -> int:
        return self.report.count(status)


def tick(database: Database, settings: Settings, clock: FixedClock, at: datetime) -> Ticked:
    clock.set(at)
    outcomes: list[Sent] = []
    dispatcher = Dispatcher(database, settings, load_backend(settings.email_backend), clock)
    return Ticked(dispatcher.run_pass(on_outcome=outcomes.append), outcomes)


def received(smtpd: CapturingSMTPServer, email: str) -> list[EmailMessage]:
    return [m.message for m in smtpd.messages if email in m.rcpt_tos]


def lesson_numbers(messages: list[EmailMessage]) -> list[int]:
    return [int(str(m["Subject"]).split(":")[0].removeprefix("Lesson ")) for m in messages]


def test_lesson_one_arrives_at_eight_local_then_weekly(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    assert tick(synced, settings, clock, datetime(2026, 3, 3, 12, 59, tzinfo=UTC)).outcomes == []
    report = tick(synced, settings, clock, datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    assert [(o.email, o.number, o.status) for o in report.outcomes] == [(ADA[0], 1, "sent")]
    # Toronto moves to daylight time on 8 March: 08:00 local is now 12:00 UTC.
    assert tick(synced, settings, clock, datetime(2026, 3, 10, 11, 59, tzinfo=UTC)).outcomes == []
    assert (
        tick(synced, settings, clock, datetime(2026, 3, 10, 12, 0, tzinfo=UTC)).count("sent") == 1
    )
    assert lesson_numbers(received(smtpd, ADA[0])) == [1, 2]
    dates = [m["Date"].datetime.astimezone(ZoneInfo(ADA[2])) for m in received(smtpd, ADA[0])]
    assert [(d.hour, d.minute) for d in dates] == [(8, 0), (8, 0)]


def test_after_downtime_one_lesson_per_pass_and_spacing_from_the_actual_send(
    synced, settings, clock, smtpd
):
    enrol(synced, clock, ADA)
    # Nobody ran the scheduler for 40 days.
    late = clock.now() + timedelta(days=40)
    tick(synced, settings, clock, late)
    tick(synced, settings, clock, late + timedelta(minutes=5))
    assert lesson_numbers(received(smtpd, ADA[0])) == [1]
    # Lesson 2 is a cadence after lesson 1 actually went out, at 08:00 local.
    tick(synced, settings, clock, late + timedelta(days=6))
    assert lesson_numbers(received(smtpd, ADA[0])) == [1]
    tick(synced, settings, clock, late + timedelta(days=8))
    assert lesson_numbers(received(smtpd, ADA[0])) == [1, 2]


def test_each_lesson_once_across_many_passes(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    enrol(synced, clock, BRUNO)
    at = clock.now()
    for _ in range(12 * 7 * 4):  # every six hours for twelve weeks
        at += timedelta(hours=6)
        tick(synced, settings, clock, at)
    for person in (ADA, BRUNO):
        assert lesson_numbers(received(smtpd, person[0])) == list(range(1, 11))
    ids = [m["Message-ID"] for m in received(smtpd, ADA[0]) + received(smtpd, BRUNO[0])]
    assert len(set(ids)) == len(ids) == 20
    with synced.transaction() as session:
        statuses = set(session.scalars(select(Enrollment.status)))
    assert statuses == {"completed"}


def test_temporary_failure_is_retried_and_delivered_once(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    smtpd.fail_next(1, code=451)
    due = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    report = tick(synced, settings, clock, due)
    assert [o.status for o in report.outcomes] == ["pending"]
    assert "451" in report.outcomes[0].detail
    assert received(smtpd, ADA[0]) == []
    # Not before the backoff (first retry within 15 minutes) ...
    assert tick(synced, settings, clock, due + timedelta(minutes=1)).outcomes == []
    # ... and then exactly once.
    tick(synced, settings, clock, due + timedelta(minutes=15))
    tick(synced, settings, clock, due + timedelta(minutes=30))
    assert lesson_numbers(received(smtpd, ADA[0])) == [1]
    with synced.transaction() as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_permanent_failure_suppresses_and_is_never_retried(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    enrol(synced, clock, BRUNO)
    smtpd.fail_recipient(ADA[0], code=550)
    at = clock.now()
    for _ in range(4 * 7 * 4):
        at += timedelta(hours=6)
        tick(synced, settings, clock, at)
    assert received(smtpd, ADA[0]) == []
    assert lesson_numbers(received(smtpd, BRUNO[0])) == [1, 2, 3, 4]
    with synced.transaction() as session:
        ada_rows = session.scalars(
            select(Delivery).join(Enrollment).where(Enrollment.subscriber.has(email=ADA[0]))
        ).all()
        assert [(d.status, d.attempts, d.smtp_code) for d in ada_rows] == [("failed", 1, 550)]
        assert session.scalars(select(Suppression.reason)).all() == ["hard_bounce"]


def test_gives_up_after_the_retry_window_and_moves_on(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    smtpd.fail_next(10_000, code=451)
    at = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    end = at + timedelta(days=3, hours=7)
    while at < end:
        tick(synced, settings, clock, at)
        at += timedelta(hours=1)
    with synced.transaction() as session:
        delivery = session.scalars(select(Delivery)).one()
        assert delivery.status == "failed"
        assert delivery.last_error.startswith("gave up after")
        assert 5 < delivery.attempts < 40
        # The course goes on with lesson 2 a cadence later; the address is not suppressed.
        assert session.scalars(select(Enrollment.next_due_at)).one() is not None
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_unsubscribe_after_the_claim_is_honoured(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    clock.set(datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    Dispatcher(synced, settings, load_backend("memory:"), clock)  # nothing sent yet
    with synced.transaction() as session:
        materialise_due(session, clock.now(), 10)
    with synced.transaction() as session:
        jobs = claim(session, clock.now(), "worker-a", 10, timedelta(minutes=5))
    assert len(jobs) == 1
    with synced.transaction() as session:
        subscriptions.unsubscribe(session, ADA[0], clock.now(), "runners")
    with synced.transaction() as session:
        assert still_wanted(session, jobs) == set()
    assert tick(synced, settings, clock, clock.now() + timedelta(minutes=10)).outcomes == []
    assert received(smtpd, ADA[0]) == []


def test_a_dead_workers_claim_is_taken_over_after_its_lease(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    clock.set(datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    with synced.transaction() as session:
        materialise_due(session, clock.now(), 10)
    with synced.transaction() as session:
        # Worker A claims and dies before sending.
        assert len(claim(session, clock.now(), "worker-a", 10, timedelta(minutes=5))) == 1
    # Within the lease nobody else touches it.
    assert tick(synced, settings, clock, clock.now() + timedelta(minutes=4)).outcomes == []
    report = tick(synced, settings, clock, clock.now() + timedelta(minutes=2))
    assert [o.status for o in report.outcomes] == ["sent"]
    assert lesson_numbers(received(smtpd, ADA[0])) == [1]


def test_a_late_answer_from_a_worker_whose_lease_was_taken_over_is_ignored(synced, clock):
    enrol(synced, clock, ADA)
    clock.set(datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    with synced.transaction() as session:
        materialise_due(session, clock.now(), 10)
    with synced.transaction() as session:
        [job] = claim(session, clock.now(), "worker-a", 10, timedelta(minutes=5))
    later = clock.now() + timedelta(minutes=6)
    with synced.transaction() as session:
        [job_b] = claim(session, later, "worker-b", 10, timedelta(minutes=5))
    sent = DeliveryResult(str(job.delivery_id), Outcome.SENT, 250)
    policy = Settings().retry_policy
    with synced.transaction() as session:
        assert record_outcomes(session, [(job_b, sent)], later, "worker-b", policy) == ["sent"]
    with synced.transaction() as session:
        failure = DeliveryResult(str(job.delivery_id), Outcome.TEMPORARY, 451, "late")
        statuses = record_outcomes(session, [(job, failure)], later, "worker-a", policy)
        assert statuses == ["taken-over"]
        assert session.get(Delivery, job.delivery_id).status == "sent"


def test_pause_moves_the_schedule_and_resume_continues(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    tick(synced, settings, clock, datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    with synced.transaction() as session:
        subscriptions.pause(session, ADA[0], datetime(2026, 3, 5, tzinfo=UTC), "runners")
    # Lesson 2 was due on 10 March; paused, nothing goes out for three weeks.
    for day in range(5, 26):
        tick(synced, settings, clock, datetime(2026, 3, day, 12, 30, tzinfo=UTC))
    assert lesson_numbers(received(smtpd, ADA[0])) == [1]
    with synced.transaction() as session:
        [enrollment] = subscriptions.resume(
            session, ADA[0], datetime(2026, 3, 26, tzinfo=UTC), "runners"
        )
        due = enrollment.next_due_at
    # Five days were still to wait when paused: they are waited after resuming.
    assert due.astimezone(ZoneInfo(ADA[2])).replace(tzinfo=None) == datetime(2026, 3, 31, 8, 0)
    tick(synced, settings, clock, due)
    assert lesson_numbers(received(smtpd, ADA[0])) == [1, 2]


def test_unsubscribe_stops_everything(synced, settings, clock, smtpd):
    enrol(synced, clock, ADA)
    tick(synced, settings, clock, datetime(2026, 3, 3, 13, 0, tzinfo=UTC))
    with synced.transaction() as session:
        subscriptions.unsubscribe(session, ADA[0], datetime(2026, 3, 4, tzinfo=UTC))
    for week in range(1, 12):
        tick(synced, settings, clock, datetime(2026, 3, 4, tzinfo=UTC) + timedelta(weeks=week))
    assert lesson_numbers(received(smtpd, ADA[0])) == [1]


@pytest.mark.parametrize("weekday_names", [["mon", "wed", "fri"]])
def test_lessons_only_on_allowed_weekdays(
    synced, settings, clock, smtpd, courses_dir, weekday_names
):
    toml = courses_dir / "runners" / "course.toml"
    text = toml.read_text().replace(
        'send_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
        f"send_days = {weekday_names!r}".replace("'", '"'),
    )
    assert 'send_days = ["mon", "wed", "fri"]' in text
    toml.write_text(text)
    from dripcourse.courses.catalog import load_sources, sync_course

    with synced.transaction() as session:
        sync_course(session, load_sources(courses_dir)[0], clock.now())
    enrol(synced, clock, ADA)  # Monday 2 March, 10:00 in Toronto: next slot Wednesday 08:00
    at = clock.now()
    for _ in range(4 * 7 * 24):
        at += timedelta(hours=1)
        tick(synced, settings, clock, at)
    days = [
        m["Date"].datetime.astimezone(ZoneInfo(ADA[2])).strftime("%a")
        for m in received(smtpd, ADA[0])
    ]
    assert days and set(days) <= {"Mon", "Wed", "Fri"}
    assert days[0] == "Wed"


def test_a_stopping_worker_finishes_the_message_in_flight_and_hands_back_the_rest(
    synced, settings, clock, smtpd
):
    for number in range(5):
        enrol(synced, clock, (f"p{number}@example.com", f"P {number}", "UTC"))
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    # Messages go out in groups (one SMTP round of pipelined commands each); a stop waits for the
    # group in flight. Groups of one make "the message in flight" exact here.
    one_by_one = settings.with_overrides(send_group=1)
    dispatcher = Dispatcher(synced, one_by_one, load_backend(settings.email_backend), clock)

    def stop_after_the_second(outcome) -> None:
        if dispatcher.stop.is_set() is False and len(smtpd.messages) == 2:
            dispatcher.stop.set()

    report = dispatcher.run_pass(on_outcome=stop_after_the_second)
    assert report.count("sent") == 2
    with synced.transaction() as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        waiting = [(d.status, d.attempts, d.lease_owner) for d in rows if d.status != "sent"]
    assert waiting == [("pending", 0, None)] * 3
    # The next worker sends them at once, without waiting for a lease to expire.
    tick(synced, settings, clock, clock.now())
    assert len(smtpd.messages) == 5


def test_a_lesson_queued_while_a_pass_runs_goes_out_in_that_pass(synced, settings, clock, smtpd):
    """The next group is prepared while the one before it is sent and recorded; a preparation that
    found nothing beside a recording is not the end of the pass."""
    from dripcourse.app.lessons import queue_lesson

    for number in range(4):
        enrol(synced, clock, (f"p{number}@example.com", f"P {number}", "UTC"))
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    in_groups = settings.with_overrides(send_group=2, batch_size=2)
    dispatcher = Dispatcher(synced, in_groups, load_backend(settings.email_backend), clock)
    queued: list[int] = []

    def queue_once_the_last_lessons_went(outcome: Sent) -> None:
        if len(smtpd.messages) == 4 and not queued:
            with synced.transaction() as session:
                queued.append(
                    queue_lesson(session, "runners", "3", clock.now(), to="p0@example.com")
                )

    report = dispatcher.run_pass(on_outcome=queue_once_the_last_lessons_went, workers=1)
    assert queued == [1]
    assert report.count("sent") == 5
    assert lesson_numbers(received(smtpd, "p0@example.com")) == [1, 3]


def test_a_stop_hands_back_the_group_prepared_ahead(synced, settings, clock, smtpd):
    for number in range(6):
        enrol(synced, clock, (f"p{number}@example.com", f"P {number}", "UTC"))
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    # Groups of two from one claim of six: while the first group is sent, the second is built.
    in_groups = settings.with_overrides(send_group=2)
    dispatcher = Dispatcher(synced, in_groups, load_backend(settings.email_backend), clock)
    report = dispatcher.run_pass(on_outcome=lambda outcome: dispatcher.stop.set(), workers=1)
    assert report.count("sent") == 2 == len(smtpd.messages)
    with synced.transaction() as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        waiting = [(d.status, d.attempts, d.lease_owner) for d in rows if d.status != "sent"]
    assert waiting == [("pending", 0, None)] * 4


def test_a_rate_limit_spaces_the_sending(synced, settings, clock, smtpd):
    for number in range(6):
        enrol(synced, clock, (f"p{number}@example.com", f"P {number}", "UTC"))
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    # 20 messages a second, sent one by one: six messages cannot take less than a quarter second.
    paced = settings.with_overrides(max_rate=20.0, send_group=1)
    dispatcher = Dispatcher(synced, paced, load_backend(settings.email_backend), clock)
    began = time.monotonic()
    assert dispatcher.run_pass().count("sent") == 6
    assert time.monotonic() - began >= 0.25


def test_a_large_backlog_is_shared_by_worker_processes(synced, settings, clock, smtpd):
    for number in range(60):
        enrol(synced, clock, (f"p{number}@example.com", f"P {number}", "UTC"))
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    small_batches = settings.with_overrides(batch_size=10, send_group=5, workers=2)
    dispatcher = Dispatcher(synced, small_batches, load_backend(settings.email_backend), clock)
    assert dispatcher._helpers_for(None) == 1
    assert dispatcher.run_pass().count("sent") == 60
    # Each person got lesson 1 exactly once, whichever process sent it.
    assert sorted(m.rcpt_tos[0] for m in smtpd.messages) == sorted(
        f"p{number}@example.com" for number in range(60)
    )
    capped = small_batches.with_overrides(max_connections=1)
    assert Dispatcher(synced, capped, load_backend("memory:"), clock)._helpers_for(None) == 0
