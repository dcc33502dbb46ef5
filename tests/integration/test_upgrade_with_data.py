"""Upgrading a database that holds data: from an older revision (0002, so that every later
migration runs over it), with realistic rows put in with raw SQL in that revision's schema, to
head; every row survives with its values, the new columns get their defaults and backfills, and
the dispatcher works on the result; and a downgrade to that revision and up again keeps the data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from raw_rows import insert
from sqlalchemy import text

from dripcourse.backends import load_backend
from dripcourse.backends.memory import outbox
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.files import read_course
from dripcourse.domain.validation import address_hash
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store import migrations
from dripcourse.store.db import Database

PREVIOUS = "0002"
HEAD = "0011"
TABLES = ["courses", "lessons", "subscribers", "enrollments", "deliveries", "suppressions"]
START_TEXT = "2026-03-02 15:00:00.000000"


@pytest.fixture
def old_database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    migrations.upgrade(db, PREVIOUS)
    yield db
    db.dispose()


def fill_previous_schema(database: Database, courses_dir: Path) -> None:
    """One course with its lessons, two subscribers (one due now, one paused), a sent delivery, a
    pending one, and two suppressions, as version 0002 would have stored them."""
    source = read_course(courses_dir / "runners")
    assert not source.problems and source.settings is not None
    stored = source.settings.to_json()
    del stored["tracking"]  # 0002 had no click tracking: [tracking] came with 0004
    with database.engine.begin() as connection:
        insert(
            connection,
            "courses",
            id=1,
            slug="runners",
            title=source.settings.title,
            settings=json.dumps(stored),
            layout_html=None,
            layout_text=None,
            synced_at="2026-02-01 09:00:00.000000",
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
                retired_at=None,
            )
        insert(
            connection,
            "subscribers",
            id=1,
            email="ann@example.com",
            name="Ann Ängström",
            timezone="Europe/Berlin",
            created_at="2026-02-01 10:00:00.000000",
        )
        insert(
            connection,
            "subscribers",
            id=2,
            email="bo@example.org",
            name="",
            timezone="America/Toronto",
            created_at="2026-02-03 11:30:00.000000",
        )
        insert(
            connection,
            "enrollments",
            id=1,
            subscriber_id=1,
            course_id=1,
            status="active",
            source="web",
            created_at="2026-02-01 10:00:00.000000",
            confirmed_at="2026-02-01 10:05:00.000000",
            paused_at=None,
            ended_at=None,
            next_due_at="2026-03-02 07:00:00.000000",  # due before START: the dispatcher owes it
            signup_ip="203.0.113.7",
            signup_user_agent="Mozilla/5.0 (X11; Linux x86_64)",
            confirm_ip="203.0.113.8",
            confirm_user_agent="Mozilla/5.0 (Android 14)",
        )
        insert(
            connection,
            "enrollments",
            id=2,
            subscriber_id=2,
            course_id=1,
            status="paused",
            source="cli",
            created_at="2026-02-03 11:30:00.000000",
            confirmed_at="2026-02-03 11:30:00.000000",
            paused_at="2026-02-10 12:00:00.000000",
            ended_at=None,
            next_due_at=None,
            signup_ip=None,
            signup_user_agent=None,
            confirm_ip=None,
            confirm_user_agent=None,
        )
        insert(
            connection,
            "deliveries",
            id=1,
            enrollment_id=1,
            lesson_id=1,
            kind="lesson",
            status="sent",
            due_at="2026-02-23 07:00:00.000000",
            next_attempt_at="2026-02-23 07:00:00.000000",
            attempts=1,
            first_attempt_at="2026-02-23 07:00:01.000000",
            last_attempt_at="2026-02-23 07:00:01.000000",
            sent_at="2026-02-23 07:00:02.000000",
            smtp_code=250,
            last_error=None,
            message_id="<lesson-1.1@courses.example.org>",
            lease_owner=None,
            lease_expires_at=None,
            created_at="2026-02-23 07:00:00.000000",
        )
        insert(
            connection,
            "deliveries",
            id=2,
            enrollment_id=2,
            lesson_id=1,
            kind="lesson",
            status="sent",
            due_at="2026-02-04 13:00:00.000000",
            next_attempt_at="2026-02-04 13:00:00.000000",
            attempts=2,
            first_attempt_at="2026-02-04 13:00:00.000000",
            last_attempt_at="2026-02-04 13:10:00.000000",
            sent_at="2026-02-04 13:10:01.000000",
            smtp_code=250,
            last_error="421 try again later",
            message_id="<lesson-2.1@courses.example.org>",
            lease_owner=None,
            lease_expires_at=None,
            created_at="2026-02-04 13:00:00.000000",
        )
        insert(
            connection,
            "suppressions",
            id=1,
            email="gone@example.com",
            reason="hard_bounce",
            detail="550 5.1.1 user unknown",
            created_at="2026-02-05 08:00:00.000000",
        )
        insert(
            connection,
            "suppressions",
            id=2,
            email="angry@example.net",
            reason="complaint",
            detail="",
            created_at="2026-02-06 08:00:00.000000",
        )


def snapshot(database: Database, columns: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Every row of every table, in the given columns (default: all of the table's columns)."""
    rows: dict[str, Any] = {}
    with database.engine.connect() as connection:
        for table in TABLES:
            if columns is None:
                result = connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            else:
                names = ", ".join(f'"{name}"' for name in columns[table])
                result = connection.execute(text(f"SELECT {names} FROM {table} ORDER BY id"))
            rows[table] = [dict(row._mapping) for row in result]
    return rows


def column_names(old: dict[str, Any]) -> dict[str, list[str]]:
    return {table: list(rows[0]) for table, rows in old.items()}


def test_upgrade_keeps_every_row_and_fills_the_new_columns(
    old_database: Database, courses_dir: Path
) -> None:
    fill_previous_schema(old_database, courses_dir)
    before = snapshot(old_database)
    assert all(before[table] for table in TABLES)

    migrations.upgrade(old_database)

    assert (
        migrations.current_revision(old_database) == HEAD == migrations.head_revision(old_database)
    )
    assert snapshot(old_database, column_names(before)) == before
    with old_database.engine.connect() as connection:
        hashes = dict(connection.execute(text("SELECT email, email_hash FROM suppressions")).all())
        soft = connection.execute(
            text("SELECT id, soft_bounces FROM subscribers ORDER BY id")
        ).all()
        bounces = connection.execute(text("SELECT count(*) FROM processed_bounces")).scalar()
    assert hashes == {
        email: hashlib.sha256(email.encode()).hexdigest()
        for email in ("gone@example.com", "angry@example.net")
    }
    assert all(hashes[email] == address_hash(email) for email in hashes), (
        "the backfill matches how the application hashes an address"
    )
    assert [tuple(row) for row in soft] == [(1, 0), (2, 0)]
    assert bounces == 0


def test_dispatcher_runs_on_the_upgraded_database(
    old_database: Database, courses_dir: Path, settings: Settings, clock: FixedClock
) -> None:
    fill_previous_schema(old_database, courses_dir)
    migrations.upgrade(old_database)
    outbox.clear()

    report = Dispatcher(old_database, settings, load_backend("memory:"), clock).run_pass()

    assert report.count("sent") == 1, report
    assert len(outbox) == 1
    with old_database.engine.connect() as connection:
        sent = connection.execute(
            text(
                "SELECT d.enrollment_id, l.key FROM deliveries d JOIN lessons l ON l.id = d.lesson_id "
                "WHERE d.status = 'sent' ORDER BY d.id"
            )
        ).all()
        next_due = connection.execute(
            text("SELECT next_due_at FROM enrollments WHERE id = 1")
        ).scalar()
    assert [tuple(row) for row in sent] == [(1, "feet"), (2, "feet"), (1, "ankles")]
    assert next_due is not None and str(next_due) > START_TEXT
    # The suppressed addresses are still recognised after the backfill.
    again = Dispatcher(old_database, settings, load_backend("memory:"), clock).run_pass()
    assert again.count("sent") == 0
    outbox.clear()


def test_upgrade_of_the_previous_schema_with_nothing_in_it(old_database: Database) -> None:
    migrations.upgrade(old_database)
    assert migrations.current_revision(old_database) == HEAD
    assert snapshot(old_database) == {table: [] for table in TABLES}


def test_down_to_the_previous_revision_and_up_again_keeps_the_data(
    old_database: Database, courses_dir: Path
) -> None:
    fill_previous_schema(old_database, courses_dir)
    before = snapshot(old_database)
    migrations.upgrade(old_database)
    config = migrations._config(old_database)
    with old_database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, PREVIOUS)
        connection.commit()
    assert snapshot(old_database) == before
    migrations.upgrade(old_database)
    assert snapshot(old_database, column_names(before)) == before
