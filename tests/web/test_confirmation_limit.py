"""A stranger cannot mail-bomb an address through the sign-up form (issue 11), and a second course
is still confirmed (issue 12): until the mailbox confirms, at most one confirmation email an hour,
two a day and five in all reach it, in any spelling and for any course; a sign-up that comes too
soon is confirmed later, not dropped; and the form's answer is the same whatever happened.
Time is moved with the injectable clock; the real dispatcher sends to a real SMTP server."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from api_server import serving
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from dripcourse.app.subscriptions import confirm, subscribe
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.domain.policy import (
    CONFIRMATION_INTERVAL,
    CONFIRMATIONS_A_DAY,
    CONFIRMATIONS_UNTIL_CONFIRMED,
    confirmation_slot,
)
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Enrollment
from dripcourse.web.app import create_app


@pytest.fixture
def two_courses(synced: Database, courses_dir: Path, clock: FixedClock) -> Database:
    shutil.copytree(courses_dir / "runners", courses_dir / "walkers")
    with synced.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    return synced


def sign_up(database: Database, clock: FixedClock, email: str, course: str = "runners") -> str:
    with database.transaction() as session:
        result = subscribe(session, email=email, course_slug=course, now=clock.now(), source="http")
        return result.confirmation_held


def dispatch(database: Database, settings: Settings, clock: FixedClock) -> None:
    Dispatcher(database, settings, load_backend(settings.email_backend), clock).run_pass()


def arrivals(smtpd: CapturingSMTPServer) -> list[str]:
    return [str(m.message["Subject"]) for m in smtpd.messages]


def test_an_hour_of_sign_ups_is_one_email_and_a_second_course_follows_an_hour_later(
    two_courses, settings, clock, smtpd
):
    start = clock.now()
    for minute in range(20):
        sign_up(two_courses, clock, ["ada@example.com", "ADA@example.com"][minute % 2])
        sign_up(two_courses, clock, "Ada@Example.com", "walkers")
        dispatch(two_courses, settings, clock)
        clock.advance(timedelta(minutes=3))
    assert len(arrivals(smtpd)) == 1  # runners' confirmation; walkers' waits for its hour

    clock.set(start + CONFIRMATION_INTERVAL)
    dispatch(two_courses, settings, clock)
    assert len(arrivals(smtpd)) == 2, "the second course is confirmed, an hour later"
    assert {m.rcpt_tos for m in smtpd.messages} == {("ada@example.com",)}


def test_five_in_all_until_the_mailbox_confirms_then_the_count_starts_again(
    two_courses, settings, clock, smtpd
):
    for _ in range(20):
        for course in ("runners", "walkers"):
            sign_up(two_courses, clock, "bo@example.com", course)
        dispatch(two_courses, settings, clock)
        clock.advance(timedelta(hours=6))
    assert len(arrivals(smtpd)) == CONFIRMATIONS_UNTIL_CONFIRMED
    assert sign_up(two_courses, clock, "bo@example.com") == "5 confirmation emails went unanswered"

    with two_courses.transaction() as session:
        enrollment = session.scalars(select(Enrollment)).first()
        assert enrollment is not None
        confirm(session, enrollment, clock.now())
    clock.advance(timedelta(hours=2))
    assert sign_up(two_courses, clock, "bo@example.com", "walkers") == ""


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=3 * 24 * 60), min_size=1, max_size=40),
)
def test_no_day_ever_holds_more_than_two_and_no_hour_more_than_one(gaps: list[int]) -> None:
    """The rule itself, over any rhythm of sign-ups: what it schedules never breaks the limits."""
    now, asked = datetime(2026, 3, 2, 9, 0), []  # naive is enough: the rule is arithmetic
    for gap in gaps:
        now += timedelta(minutes=gap)
        due = confirmation_slot(asked, now)
        if due is None:
            assert len(asked) == CONFIRMATIONS_UNTIL_CONFIRMED
            continue
        assert due >= now
        asked.append(due)
    asked.sort()
    assert len(asked) <= CONFIRMATIONS_UNTIL_CONFIRMED
    assert all(b - a >= CONFIRMATION_INTERVAL for a, b in pairwise(asked))
    window = CONFIRMATIONS_A_DAY
    assert all(
        asked[i + window] - asked[i] >= timedelta(days=1) for i in range(len(asked) - window)
    )


def test_the_form_answers_alike_whether_a_confirmation_was_queued_or_held(
    settings: Settings, synced: Database, clock: FixedClock, smtpd
):
    # The per-client limit of the form is another guard; here one client is every stranger.
    settings = settings.with_overrides(signup_rate_per_minute=1000)
    app = create_app(settings, synced, clock, wake=lambda: None)
    answers = set()
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        for _ in range(40):
            response = client.post(
                "/subscribe", json={"email": "cy@example.com", "course": "runners", "name": "Cy"}
            )
            answers.add((response.status_code, response.text))
            dispatch(synced, settings, clock)
            clock.advance(timedelta(hours=2))
    assert len(answers) == 1 and next(iter(answers))[0] == 202
    assert len(arrivals(smtpd)) == CONFIRMATIONS_UNTIL_CONFIRMED
