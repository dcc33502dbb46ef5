"""A stranger cannot mail-bomb an address through the sign-up form (issue 11): until the mailbox
confirms, at most one confirmation email an hour, two a day and five in all are queued for it, in
any spelling and for any course, and the form's answer is the same whether one was queued or not.
Time is moved with the injectable clock."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import httpx
from api_server import serving
from sqlalchemy import func, select

from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses import load_sources, sync_course
from dripcourse.db import Database
from dripcourse.models import Delivery, DeliveryKind, Enrollment
from dripcourse.subscriptions import confirm, subscribe
from dripcourse.web.app import create_app


def confirmations(database: Database) -> int:
    with database.transaction() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.kind == DeliveryKind.CONFIRMATION)
            )
            or 0
        )


def sign_up(database: Database, clock: FixedClock, email: str, course: str = "runners") -> str:
    with database.transaction() as session:
        result = subscribe(session, email=email, course_slug=course, now=clock.now(), source="http")
        return result.confirmation_held


def test_an_hour_of_sign_ups_is_one_email_and_a_day_is_two(synced, clock):
    held = [sign_up(synced, clock, "ada@example.com") for _ in range(20)]
    assert confirmations(synced) == 1
    assert held[0] == "" and set(held[1:]) == {"a confirmation email in the last hour"}

    clock.advance(timedelta(hours=1, seconds=1))
    sign_up(synced, clock, "ADA@example.com")
    clock.advance(timedelta(hours=2))
    assert sign_up(synced, clock, "Ada@Example.com") == "2 confirmation emails in the last 24 hours"
    assert confirmations(synced) == 2

    clock.advance(timedelta(hours=21))  # the first one is now more than a day old
    assert sign_up(synced, clock, "ada@example.com") == ""
    assert confirmations(synced) == 3


def test_five_in_all_until_the_mailbox_confirms_then_the_count_starts_again(
    synced, courses_dir: Path, clock
):
    shutil.copytree(courses_dir / "runners", courses_dir / "walkers")
    with synced.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    for _ in range(10):
        for course in ("runners", "walkers"):
            sign_up(synced, clock, "bo@example.com", course)
            clock.advance(timedelta(hours=12))
    assert confirmations(synced) == 5
    assert sign_up(synced, clock, "bo@example.com") == "5 confirmation emails went unanswered"

    with synced.transaction() as session:
        enrollment = session.scalars(select(Enrollment)).first()
        assert enrollment is not None
        confirm(session, enrollment, clock.now())
    clock.advance(timedelta(hours=2))
    assert sign_up(synced, clock, "bo@example.com", "walkers") == ""
    assert confirmations(synced) == 6


def test_the_form_answers_alike_whether_a_confirmation_was_queued_or_held(
    settings: Settings, synced: Database, clock: FixedClock
):
    # The per-client limit of the form is another guard; here one client is every stranger.
    settings = settings.with_overrides(signup_rate_per_minute=1000)
    app = create_app(settings, synced, clock, wake=lambda: None)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        answers = set()
        for _ in range(16):
            response = client.post(
                "/subscribe",
                json={"email": "cy@example.com", "course": "runners", "name": "Cy"},
            )
            answers.add((response.status_code, response.text))
            clock.advance(timedelta(hours=4))
    assert len(answers) == 1 and next(iter(answers))[0] == 202
    assert (
        confirmations(synced) == 5
    )  # hours 0, 4, 24, 28, 48; at 52 the day allows one, five in all do not
