"""A subscriber's timeline against the real dispatcher, a real SQLite file and a real SMTP server:
what it says was sent is what arrived, and what it says is owed next goes out exactly then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dripcourse.app import lessons, overview, subscriptions
from dripcourse.app.timeline import Timeline, timeline
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.domain.schedule import PlannedLesson
from dripcourse.sending.dispatch import Dispatcher, Sent
from dripcourse.store.db import Database
from dripcourse.store.models import SuppressionReason

BRUNO = ("bruno@example.com", "Bruno Schulz", "Europe/Berlin")
BERLIN = ZoneInfo(BRUNO[2])


def enrol(database: Database, clock: FixedClock, confirmed: bool = True) -> None:
    email, name, zone = BRUNO
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name=name,
            timezone=zone,
            confirmed=confirmed,
            now=clock.now(),
        )


def tick(database: Database, settings: Settings, clock: FixedClock, at: datetime) -> list[Sent]:
    clock.set(at)
    outcomes: list[Sent] = []
    backend = load_backend(settings.email_backend)
    Dispatcher(database, settings, backend, clock).run_pass(on_outcome=outcomes.append)
    return [o for o in outcomes if o.email == BRUNO[0]]


def timeline_at(database: Database, at: datetime) -> Timeline:
    with database.read() as session:
        return timeline(session, BRUNO[0], at)


def follow(
    database: Database, settings: Settings, clock: FixedClock, plan: list[PlannedLesson]
) -> None:
    """Run the dispatcher a minute before and at each planned time: each lesson goes out at its
    time, not a minute sooner."""
    for lesson in plan:
        assert tick(database, settings, clock, lesson.due_at - timedelta(minutes=1)) == []
        sent = tick(database, settings, clock, lesson.due_at)
        assert [(o.number, o.lesson, o.status) for o in sent] == [
            (lesson.number, lesson.key, "sent")
        ], f"lesson {lesson.number} was planned for {lesson.due_at}"


def test_mid_course_the_timeline_shows_what_arrived_and_the_rest_goes_out_as_planned(
    synced, settings, clock, smtpd: CapturingSMTPServer
):
    enrol(synced, clock)
    for day in (3, 10, 17):  # the passes run at 13:00 in Berlin, five hours after the send time
        tick(synced, settings, clock, datetime(2026, 3, day, 12, 0, tzinfo=UTC))
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    [runners] = timeline_at(synced, now).enrollments

    arrived = [m.message for m in smtpd.messages if BRUNO[0] in m.rcpt_tos]
    assert [(row.number, row.key, row.status, row.attempts) for row in runners.ledger] == [
        (1, "feet", "sent", 1),
        (2, "ankles", "sent", 1),
        (3, "calves-achilles", "sent", 1),
    ]
    assert [row.message_id for row in runners.ledger] == [m["Message-ID"] for m in arrived]
    assert [row.sent_at for row in runners.ledger] == [
        datetime(2026, 3, day, 12, 0, tzinfo=UTC) for day in (3, 10, 17)
    ]
    assert runners.held is None
    assert [lesson.number for lesson in runners.owed] == list(range(4, 11))
    # The queue says the same about the next lesson.
    with synced.read() as session:
        [queued] = [e for e in overview.upcoming(session) if e.email == BRUNO[0]]
    assert (queued.due_at, queued.lesson) == (runners.owed[0].due_at, "4 knees")

    # 08:00 in Berlin every Tuesday, across the change to summer time on 29 March.
    assert runners.owed[0].due_at == datetime(2026, 3, 24, 7, 0, tzinfo=UTC)
    assert runners.owed[1].due_at == datetime(2026, 3, 31, 6, 0, tzinfo=UTC)
    follow(synced, settings, clock, runners.owed)
    [done] = timeline_at(synced, clock.now() + timedelta(days=1)).enrollments
    assert (done.status, done.owed, done.held) == ("completed", [], None)
    assert [row.number for row in done.ledger] == list(range(1, 11))


def test_lessons_moved_off_the_weekend_go_out_on_the_day_the_timeline_says(
    synced, settings, clock, courses_dir: Path
):
    toml = courses_dir / "runners" / "course.toml"
    toml.write_text(
        toml.read_text().replace(
            'cadence_days = 7\nsend_time = "08:00"\nsend_days = ["mon", "tue", "wed", "thu", '
            '"fri", "sat", "sun"]',
            'cadence_days = 3\nsend_time = "08:00"\nsend_days = ["mon", "tue", "wed", "thu", "fri"]',
        )
    )
    with synced.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    enrol(synced, clock)
    [runners] = timeline_at(synced, clock.now()).enrollments
    moved = [lesson for lesson in runners.owed if lesson.moved_from is not None]
    assert moved, "a three-day rhythm on weekdays only must land on a weekend"
    weekdays = {lesson.due_at.astimezone(BERLIN).weekday() for lesson in runners.owed}
    assert weekdays <= {0, 1, 2, 3, 4}
    follow(synced, settings, clock, runners.owed)


def test_an_overdue_lesson_is_due_now_and_the_next_keeps_its_spacing(synced, settings, clock):
    enrol(synced, clock)
    tick(synced, settings, clock, datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
    # Nobody ran the scheduler for a while: lesson 2 (due 10 March) is five days late.
    now = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    [runners] = timeline_at(synced, now).enrollments
    assert runners.owed[0].due_at == datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    assert runners.owed[1].due_at == datetime(2026, 3, 22, 7, 0, tzinfo=UTC)
    assert [o.number for o in tick(synced, settings, clock, now)] == [2]
    follow(synced, settings, clock, runners.owed[1:])


def test_a_retried_lesson_shows_its_attempts_and_error_and_the_next_follows_it(
    synced, settings, clock, smtpd: CapturingSMTPServer
):
    enrol(synced, clock)
    smtpd.fail_next(1, code=451)
    due = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    assert [o.status for o in tick(synced, settings, clock, due)] == ["pending"]
    [runners] = timeline_at(synced, due + timedelta(minutes=1)).enrollments
    [row] = runners.ledger
    assert (row.number, row.status, row.attempts, row.waiting) == (1, "pending", 1, True)
    assert row.last_error is not None and "451" in row.last_error
    assert row.at == row.next_attempt_at > due
    assert runners.owed[0].number == 2
    assert [o.status for o in tick(synced, settings, clock, row.next_attempt_at)] == ["sent"]
    follow(synced, settings, clock, runners.owed[:2])


def test_paused_suppressed_and_unconfirmed_people_are_held_with_the_reason(synced, settings, clock):
    enrol(synced, clock, confirmed=False)
    [pending] = timeline_at(synced, clock.now()).enrollments
    assert pending.held is not None and pending.held.reason == "unconfirmed"
    assert [row.kind for row in pending.ledger] == ["confirmation"]
    assert len(pending.held.lessons) == 10 and pending.owed == []

    enrol(synced, clock)
    tick(synced, settings, clock, datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
    paused_at = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    with synced.transaction() as session:
        subscriptions.pause(session, BRUNO[0], paused_at)
    [paused] = timeline_at(synced, paused_at + timedelta(days=7)).enrollments
    assert paused.held is not None
    assert (paused.status, paused.held.reason, paused.held.since) == (
        "paused",
        "paused",
        paused_at,
    )
    assert paused.held.lessons[0] == (2, "ankles") and paused.owed == []

    with synced.transaction() as session:
        subscriptions.resume(session, BRUNO[0], paused_at + timedelta(days=1))
        subscriptions.suppress(
            session, BRUNO[0], SuppressionReason.HARD_BOUNCE, paused_at, detail="550"
        )
    [suppressed] = timeline_at(synced, paused_at + timedelta(days=8)).enrollments
    assert suppressed.held is not None
    assert (suppressed.held.reason, suppressed.held.detail) == ("suppressed", "hard_bounce")
    # ... and indeed the dispatcher sends nothing.
    assert tick(synced, settings, clock, paused_at + timedelta(days=30)) == []


def test_a_lesson_queued_by_an_operator_shows_as_an_extra(synced, settings, clock):
    enrol(synced, clock)
    tick(synced, settings, clock, datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
    at = datetime(2026, 3, 5, 7, 0, tzinfo=UTC)
    with synced.transaction() as session:
        lessons.queue_lesson(session, "runners", "knees", at, to=BRUNO[0])
    [runners] = timeline_at(synced, at - timedelta(hours=1)).enrollments
    assert [(row.number, row.kind, row.status) for row in runners.ledger] == [
        (1, "lesson", "sent"),
        (4, "extra", "pending"),
    ]
    # The rhythm goes on as before: lesson 2 next Tuesday.
    assert (runners.owed[0].number, runners.owed[0].due_at) == (
        2,
        datetime(2026, 3, 10, 7, 0, tzinfo=UTC),
    )
