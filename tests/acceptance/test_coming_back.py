"""Someone who left comes back only by their own confirmation, by whichever door (issue 13's one
aligned rule): `subscribe` and `subscribers import` decide with the same `admission`. Without
--confirmed both send the person a confirmation; with --confirmed both refuse, naming why."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Subscriber

NOW = "2026-03-02T15:00:00Z"
LATER = "2026-03-09T15:00:00Z"


@pytest.fixture
def ready(cli) -> None:
    for step in (("db", "upgrade"), ("courses", "sync")):
        assert cli(*step).code == 0


def status_of(settings, email: str) -> str:
    database = Database(settings.database_url)
    try:
        with database.read() as session:
            return session.scalars(
                select(Enrollment.status).join(Subscriber).where(Subscriber.email == email)
            ).one()
    finally:
        database.dispose()


def rows(settings) -> tuple[int, int]:
    """How many subscribers and deliveries are stored."""
    database = Database(settings.database_url)
    try:
        with database.read() as session:
            people = session.scalar(select(func.count()).select_from(Subscriber)) or 0
            owed = session.scalar(select(func.count()).select_from(Delivery)) or 0
            return people, owed
    finally:
        database.dispose()


def subjects_to(smtpd: CapturingSMTPServer, email: str) -> list[str]:
    return [str(m.message["Subject"]) for m in smtpd.messages if email in m.rcpt_tos]


def left(cli, email: str, *, everything: bool) -> None:
    assert cli("subscribe", email, "--course", "runners", "--confirmed", "--now", NOW).code == 0
    course = () if everything else ("--course", "runners")
    assert cli("unsubscribe", email, *course, "--now", NOW).code == 0


def test_an_import_asks_those_who_left_as_subscribe_does(ready, cli, smtpd, settings, tmp_path):
    left(cli, "all@example.com", everything=True)
    left(cli, "one@example.com", everything=False)
    people = tmp_path / "people.csv"
    people.write_text("email,name\nall@example.com,All\none@example.com,One\n")

    confirmed = cli("subscribers", "import", str(people), "--course", "runners", "--confirmed")
    assert confirmed.code == 1, confirmed
    assert "all@example.com is suppressed (unsubscribed)" in confirmed.err
    assert "one@example.com left runners; import without --confirmed" in confirmed.err
    assert status_of(settings, "one@example.com") == "unsubscribed"
    by_hand = cli("subscribe", "one@example.com", "--course", "runners", "--confirmed")
    assert by_hand.code == 2 and "only their own confirmed sign-up" in by_hand.err, by_hand

    asked = cli("subscribers", "import", str(people), "--course", "runners", "--now", LATER)
    assert asked.code == 0, asked
    assert "imported 2, already enrolled 0, skipped 0" in asked.out
    assert cli("tick", "--now", LATER).code == 0

    for email in ("all@example.com", "one@example.com"):
        assert status_of(settings, email) == "unsubscribed"  # until they click
        (confirmation,) = [s for s in subjects_to(smtpd, email) if not s.startswith("Lesson")]
        assert "confirm" in confirmation.lower(), confirmation


def test_an_import_of_people_already_in_the_course_changes_nothing(ready, cli, tmp_path):
    assert cli("subscribe", "in@example.com", "--course", "runners", "--confirmed").code == 0
    people = tmp_path / "people.csv"
    people.write_text("email\nin@example.com\n")

    for extra in ((), ("--confirmed",)):
        again = cli("subscribers", "import", str(people), "--course", "runners", *extra)
        assert "imported 0, already enrolled 1, skipped 0" in again.out, again


def test_an_unconfirmed_import_of_a_forgotten_address_is_refused(ready, cli, settings, tmp_path):
    assert cli("subscribe", "gone@example.com", "--course", "runners", "--confirmed").code == 0
    assert cli("subscribers", "forget", "gone@example.com").code == 0
    people = tmp_path / "people.csv"
    people.write_text("email\ngone@example.com\n")

    result = cli("subscribers", "import", str(people), "--course", "runners")

    assert result.code == 1
    assert "gone@example.com is suppressed (forgotten)" in result.err
    assert rows(settings) == (0, 0)  # not even a subscriber row is written for them


def test_an_import_does_not_ask_again_those_still_to_confirm(ready, cli, settings, tmp_path):
    assert cli("subscribe", "wait@example.com", "--course", "runners", "--now", NOW).code == 0
    before = rows(settings)
    people = tmp_path / "people.csv"
    people.write_text("email\nwait@example.com\n")

    for extra in ((), ("--confirmed",)):
        again = cli(
            "subscribers", "import", str(people), "--course", "runners", "--now", LATER, *extra
        )
        assert "imported 0, already enrolled 1, skipped 0" in again.out, again

    assert rows(settings) == before
    assert status_of(settings, "wait@example.com") == "pending"
