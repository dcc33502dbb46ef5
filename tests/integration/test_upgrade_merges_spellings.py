"""Migration 0005 over a database of revision 0004 that holds three spellings of one mailbox, a
Unicode domain and the suppressions of several spellings: one person is left, with every course,
the history of each lesson once, nothing left to send twice, the strongest suppression, and a line
in the log saying what was merged (issue 11, finding 7). On SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from raw_rows import insert
from sqlalchemy import text

from dripcourse.app.subscriptions import subscribe
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.files import read_course
from dripcourse.domain.validation import address_hash
from dripcourse.errors import Conflict
from dripcourse.store import migrations
from dripcourse.store.db import Database
from dripcourse.store.queries import suppression_of

pytestmark = pytest.mark.both_databases
DAY = "2026-02-{:02d} 10:00:00.000000"


@pytest.fixture
def at_0004(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    migrations.upgrade(db, "0004")
    yield db
    db.dispose()


def delivery(connection: Any, id: int, enrollment: int, lesson: int | None, status: str) -> None:
    insert(
        connection,
        "deliveries",
        id=id,
        enrollment_id=enrollment,
        lesson_id=lesson,
        kind="lesson" if lesson else "confirmation",
        status=status,
        due_at=DAY.format(id),
        next_attempt_at=DAY.format(id),
        attempts=1 if status == "sent" else 0,
        sent_at=DAY.format(id) if status == "sent" else None,
        message_id=f"<d{id}@courses.example.org>",
        created_at=DAY.format(id),
    )


def enrollment(connection: Any, id: int, subscriber: int, course: int, status: str) -> None:
    insert(
        connection,
        "enrollments",
        id=id,
        subscriber_id=subscriber,
        course_id=course,
        status=status,
        source="cli",
        created_at=DAY.format(subscriber),
        confirmed_at=None if status == "pending" else DAY.format(subscriber),
        ended_at=DAY.format(10) if status == "unsubscribed" else None,
        next_due_at=None,
    )


def fill(database: Database, courses_dir: Path) -> None:
    source = read_course(courses_dir / "runners")
    settings = source.checked_settings
    with database.engine.begin() as connection:
        for course_id, slug in ((1, "runners"), (2, "walkers")):
            insert(
                connection,
                "courses",
                id=course_id,
                slug=slug,
                title=settings.title,
                settings=json.dumps(settings.to_json()),
                synced_at=DAY.format(1),
            )
        for lesson in source.lessons:
            insert(
                connection,
                "lessons",
                id=lesson.position,
                course_id=1,
                key=lesson.key,
                position=lesson.position,
                source_file=lesson.file.name,
                subject=lesson.subject,
                title=lesson.title,
                data=json.dumps(lesson.data),
                body=lesson.body,
                body_line=lesson.body_line,
                content_hash=lesson.content_hash,
            )
        for id, email in (
            (1, "bob@example.com"),
            (2, "Bob@Example.com"),
            (3, "BOB@example.com"),
            (4, "ann@bücher.example"),
        ):
            insert(
                connection,
                "subscribers",
                id=id,
                email=email,
                name="",
                timezone="Europe/Berlin",
                created_at=DAY.format(id),
                soft_bounces=0,
            )
        enrollment(connection, 1, 1, 1, "active")  # the kept spelling, in runners
        delivery(connection, 1, 1, 1, "sent")
        enrollment(connection, 2, 2, 1, "unsubscribed")  # the same course, left
        delivery(connection, 2, 2, 1, "sent")  # lesson 1 again: the kept one has it
        delivery(connection, 3, 2, 2, "sent")  # lesson 2: history the kept one lacks
        delivery(connection, 4, 2, 3, "pending")  # would go out twice
        enrollment(connection, 3, 2, 2, "pending")  # a course only this spelling is in
        delivery(connection, 5, 3, None, "pending")
        for id, email, reason in (
            (1, "Bob@Example.com", "unsubscribed"),
            (2, "bob@example.com", "hard_bounce"),
            (3, None, "forgotten"),
        ):
            insert(
                connection,
                "suppressions",
                id=id,
                email=email,
                email_hash=hashlib.sha256((email or "x@forgotten.example").encode()).hexdigest(),
                reason=reason,
                detail="",
                created_at=DAY.format(id),
            )


def rows(database: Database, query: str) -> list[tuple[Any, ...]]:
    with database.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query))]


def test_spellings_of_one_mailbox_become_one_person(
    at_0004: Database, courses_dir: Path, caplog: pytest.LogCaptureFixture, clock: FixedClock
) -> None:
    fill(at_0004, courses_dir)

    with caplog.at_level(logging.WARNING):
        migrations.upgrade(at_0004)

    assert migrations.current_revision(at_0004) == "0011"
    assert rows(at_0004, "SELECT id, email, email_key FROM subscribers ORDER BY id") == [
        (1, "bob@example.com", "bob@example.com"),
        (4, "ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example"),
    ]
    assert rows(
        at_0004, "SELECT id, subscriber_id, course_id, status FROM enrollments ORDER BY id"
    ) == [(1, 1, 1, "unsubscribed"), (3, 1, 2, "pending")]
    assert rows(
        at_0004, "SELECT id, enrollment_id, lesson_id, status FROM deliveries ORDER BY id"
    ) == [(1, 1, 1, "sent"), (3, 1, 2, "sent"), (5, 3, None, "pending")]
    assert rows(at_0004, "SELECT email, email_hash, reason FROM suppressions ORDER BY id") == [
        ("Bob@Example.com", address_hash("bob@example.com"), "hard_bounce"),
        (None, hashlib.sha256(b"x@forgotten.example").hexdigest(), "forgotten"),
    ]
    assert "subscriber 1: merged 2, 3" in caplog.text
    assert "example.com" not in caplog.text, "addresses are not written to the log"

    with at_0004.transaction() as session:
        assert suppression_of(session, "BOB@EXAMPLE.COM") is not None
        with pytest.raises(Conflict, match="suppressed"):
            subscribe(session, email="Bob@example.com", course_slug="walkers", now=clock.now())


def test_a_database_without_duplicates_keeps_every_address_as_it_was(
    at_0004: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with at_0004.engine.begin() as connection:
        for id, email in ((1, "Ada@Example.org"), (2, "bo@example.net")):
            insert(
                connection,
                "subscribers",
                id=id,
                email=email,
                name="",
                timezone="UTC",
                created_at=DAY.format(id),
                soft_bounces=0,
            )
    with caplog.at_level(logging.WARNING):
        migrations.upgrade(at_0004)
    assert rows(at_0004, "SELECT id, email, email_key FROM subscribers ORDER BY id") == [
        (1, "Ada@Example.org", "ada@example.org"),
        (2, "bo@example.net", "bo@example.net"),
    ]
    assert "merged" not in caplog.text
