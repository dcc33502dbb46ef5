"""One mailbox is one person, whatever the case of its letters (issue 11, finding 7): whoever
unsubscribed from all mail is never mailed again in another spelling, and `subscribe`, import and
look-ups find the person already there instead of making a second copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import Enrollment, Subscriber

NOW = "2026-03-02T15:00:00Z"


@pytest.fixture
def two_courses(cli, courses_dir: Path):
    shutil.copytree(courses_dir / "runners", courses_dir / "walkers")
    for step in (("db", "upgrade"), ("courses", "sync")):
        assert cli(*step).code == 0
    return cli


def people(database_url: str) -> list[str]:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            return list(session.scalars(select(Subscriber.email).order_by(Subscriber.id)))
    finally:
        database.dispose()


def recipients(smtpd: CapturingSMTPServer) -> list[str]:
    return [address for message in smtpd.messages for address in message.rcpt_tos]


def test_unsubscribed_from_everything_is_not_mailed_in_another_spelling(
    two_courses, smtpd, settings
):
    cli = two_courses
    assert cli("subscribe", "bob@example.com", "--course", "runners", "--confirmed").code == 0
    assert cli("unsubscribe", "bob@example.com", "--now", NOW).code == 0

    again = cli("subscribe", "BOB@example.com", "--course", "walkers", "--confirmed", "--now", NOW)
    assert again.code == 2
    assert "unsubscribed from all mail" in again.err
    # Without --confirmed it is a confirmation email to the person, who alone can lift it.
    cli("subscribe", "Bob@Example.COM", "--course", "walkers", "--now", NOW)
    for day in ("2026-03-03T15:00:00Z", "2026-03-10T15:00:00Z", "2026-03-17T15:00:00Z"):
        assert cli("tick", "--now", day).code == 0

    kinds = [str(m.message["Subject"]) for m in smtpd.messages]
    assert all(address.lower() == "bob@example.com" for address in recipients(smtpd))
    assert not any(subject.startswith("Lesson") for subject in kinds), kinds
    assert people(settings.database_url) == ["bob@example.com"]


def test_every_spelling_finds_the_one_person(two_courses, smtpd, settings):
    cli = two_courses
    first = ("--confirmed", "--now", NOW)
    assert cli("subscribe", "bob@example.com", "--course", "runners", *first).code == 0
    joined = cli("subscribe", "Bob@Example.COM", "--course", "walkers", *first)
    assert joined.code == 0, joined.err
    twice = cli("subscribe", "BOB@example.com", "--course", "runners", "--confirmed")
    assert "already enrolled in runners" in twice.out + twice.err

    assert people(settings.database_url) == ["bob@example.com"]
    shown = cli("subscribers", "show", "BOB@EXAMPLE.COM")
    assert shown.code == 0 and "runners" in shown.out and "walkers" in shown.out, shown
    assert cli("pause", "BoB@example.com", "--course", "walkers").code == 0

    cli("tick", "--now", "2026-03-03T15:00:00Z")
    # Mail goes to the spelling the person typed first, once per lesson owed.
    assert recipients(smtpd) == ["bob@example.com"]


def test_import_matches_people_and_rows_by_mailbox(two_courses, smtpd, settings, tmp_path):
    cli = two_courses
    assert cli("subscribe", "ann@example.com", "--course", "runners", "--confirmed").code == 0
    cli("subscribe", "gone@example.com", "--course", "runners", "--confirmed")
    assert cli("unsubscribe", "gone@example.com", "--now", NOW).code == 0
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,name\nANN@example.com,Ann\nnew@example.com,New\nNew@Example.com,Again\n"
        "GONE@example.com,Gone\n"
    )

    result = cli("subscribers", "import", str(csv), "--course", "walkers", "--confirmed")

    assert "New@example.com is already on line 3" in result.err + result.out, result
    assert "GONE@example.com is suppressed" in result.err + result.out, result
    assert people(settings.database_url) == [
        "ann@example.com",
        "gone@example.com",
        "new@example.com",
    ]
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            counted = session.scalar(select(func.count()).select_from(Enrollment))
    finally:
        database.dispose()
    assert counted == 4  # ann twice, gone once (runners, unsubscribed), new once
