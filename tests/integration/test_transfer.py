"""`dripcourse db migrate-to`: a real SQLite installation copied to an empty PostgreSQL database,
row for row, and sending goes on from the copy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.clock import FixedClock
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import Base

PEOPLE = [
    ("ada@example.com", "Ada Lovelace", "America/Toronto"),
    ("bruno@example.com", "Bruno Schulz", "Europe/Berlin"),
]


def everything(database: Database) -> dict[str, list[tuple[object, ...]]]:
    with database.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def subjects(smtpd: CapturingSMTPServer) -> list[tuple[str, str]]:
    return sorted((m.rcpt_tos[0], str(m.message["Subject"]).split(":")[0]) for m in smtpd.messages)


def test_a_sqlite_installation_moves_to_postgresql_and_keeps_sending(
    synced, clock: FixedClock, cli, smtpd, empty_postgres_url, monkeypatch
):
    with synced.transaction() as session:
        for email, name, zone in PEOPLE:
            subscriptions.subscribe(
                session,
                email=email,
                course_slug="runners",
                name=name,
                timezone=zone,
                confirmed=True,
                now=clock.now(),
            )
    assert "2 sent" in cli("tick", "--now", "2026-03-03T13:00:00Z", "-q").out
    smtpd.reset()

    moved = cli("db", "migrate-to", empty_postgres_url)
    assert moved.code == 0, moved.err
    assert "subscribers: 2 row(s)" in moved.out
    assert "deliveries: 2 row(s)" in moved.out
    target = Database(empty_postgres_url)
    try:
        assert everything(target) == everything(synced)

        again = cli("db", "migrate-to", empty_postgres_url)
        assert again.code == 2
        assert again.err.count("\n") == 1 and "not empty" in again.err

        monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", empty_postgres_url)
        # Lesson 2 is due a week later, 08:00 local: sent from the copy.
        assert "2 sent" in cli("tick", "--now", "2026-03-10T13:00:00Z", "-q").out
        assert subjects(smtpd) == [
            ("ada@example.com", "Lesson 2"),
            ("bruno@example.com", "Lesson 2"),
        ]
        # The id sequences were moved past the copied rows: new rows do not collide.
        with target.transaction() as session:
            subscriptions.subscribe(
                session,
                email="carla@example.com",
                course_slug="runners",
                confirmed=True,
                now=datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
            )
    finally:
        target.dispose()


@pytest.mark.usefixtures("database")
def test_migrate_to_an_unreachable_database_is_one_line(cli):
    result = cli("db", "migrate-to", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "cannot open the target database" in result.err
