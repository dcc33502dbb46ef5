"""The overview's figures against a real database: sent per day over 30 UTC days (days without a
message included), due per day over 14 (overdue ones counted for today), and the week's totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dripcourse.app import subscriptions
from dripcourse.app.activity import DUE_DAYS, SENT_DAYS, activity
from dripcourse.backends import load_backend
from dripcourse.sending.dispatch import Dispatcher

pytestmark = pytest.mark.both_databases


def enrol(database, email, zone, at):
    with database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name="",
            timezone=zone,
            confirmed=True,
            now=at,
        )


def test_sent_and_due_per_day_and_the_weeks_totals(synced, settings, clock):
    # Two in Berlin and one in Toronto subscribe on Monday 2 March 2026; their lessons go out at
    # 08:00 their time on Tuesday (07:00 and 13:00 UTC).
    for email, zone in [
        ("a@example.com", "Europe/Berlin"),
        ("b@example.com", "Europe/Berlin"),
        ("c@example.com", "America/Toronto"),
    ]:
        enrol(synced, email, zone, clock.now())
    tuesday_night = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    clock.set(tuesday_night)
    Dispatcher(synced, settings, load_backend(settings.email_backend), clock).run_pass()

    with synced.read() as session:
        figures = activity(session, tuesday_night)

    assert [(c.slug, c.active) for c in figures.courses] == [("runners", 3)]
    assert len(figures.sent_per_day) == SENT_DAYS and len(figures.due_per_day) == DUE_DAYS
    assert figures.sent_per_day[-1].day == date(2026, 3, 3)
    assert {d.day: d.count for d in figures.sent_per_day if d.count} == {date(2026, 3, 3): 3}
    assert figures.sent_last_week == 3
    # Lesson 2 a week later: Berlin's on the 10th at 07:00 UTC, Toronto's at 12:00 UTC (daylight
    # saving time began in Toronto on 8 March).
    assert {d.day: d.count for d in figures.due_per_day if d.count} == {date(2026, 3, 10): 3}
    assert figures.due_next_day == 0
    assert figures.failed_last_day == 0


def test_what_is_overdue_counts_for_today(synced, clock):
    enrol(synced, "late@example.com", "Europe/Berlin", clock.now())
    much_later = clock.now() + timedelta(days=20)  # nobody sent anything meanwhile
    with synced.read() as session:
        figures = activity(session, much_later)
    assert figures.due_per_day[0] == type(figures.due_per_day[0])(much_later.date(), 1)
    assert figures.due_next_day == 1
    assert sum(d.count for d in figures.sent_per_day) == 0
