"""`db backup` and `db restore` on real SQLite files: a backup taken while another connection writes
opens and holds the rows; a restore brings a database back."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.store.db import Database
from dripcourse.store.models import Subscriber

WRITES = 300


def enrol(database: Database, clock, email: str) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, email=email, course_slug="runners", confirmed=True, now=clock.now()
        )


def subscribers_in(path: Path) -> int:
    with closing(sqlite3.connect(path)) as file:
        assert file.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(file.execute("SELECT count(*) FROM subscribers").fetchone()[0])


def test_a_backup_taken_while_another_connection_writes_has_the_rows(synced, clock, cli, tmp_path):
    for number in range(50):
        enrol(synced, clock, f"early{number}@example.com")
    started = threading.Event()

    def keep_writing() -> None:
        writer = Database(synced.url)
        try:
            for number in range(WRITES):
                enrol(writer, clock, f"late{number}@example.com")
                started.set()
        finally:
            writer.dispose()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    started.wait(10)
    target = tmp_path / "backup.db"
    result = cli("db", "backup", str(target))
    thread.join()

    assert result.code == 0, result.err
    assert f"to {target}" in result.out and "revision 0011" in result.out
    assert 50 < subscribers_in(target) <= 50 + WRITES
    assert not (tmp_path / "backup.db-wal").exists()
    with closing(sqlite3.connect(target)) as file:
        assert file.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

    again = cli("db", "backup", str(target))
    assert again.code == 2 and "--force" in again.err
    assert cli("db", "backup", str(target), "--force").code == 0
    assert subscribers_in(target) == 50 + WRITES


def test_restore_brings_a_database_back(synced, clock, cli, tmp_path):
    enrol(synced, clock, "ada@example.com")
    target = tmp_path / "backup.db"
    assert cli("db", "backup", str(target)).code == 0
    with synced.transaction() as session:
        subscriptions.unsubscribe(session, "ada@example.com", clock.now())
        session.delete(session.scalars(select(Subscriber)).one())
    enrol(synced, clock, "bruno@example.com")

    refused = cli("db", "restore", str(target))
    assert refused.code == 2 and "--force" in refused.err
    restored = cli("db", "restore", str(target), "--force")
    assert restored.code == 0, restored.err
    assert "restored" in restored.out

    synced.dispose()
    with synced.read() as session:
        assert session.scalars(select(Subscriber.email)).all() == ["ada@example.com"]
    shown = cli("subscribers", "show", "ada@example.com")
    assert shown.code == 0 and "runners: active" in shown.out


def test_restore_into_a_new_place_and_migrates(synced, clock, cli, tmp_path, monkeypatch):
    enrol(synced, clock, "ada@example.com")
    target = tmp_path / "backup.db"
    assert cli("db", "backup", str(target)).code == 0
    fresh = tmp_path / "elsewhere" / "fresh.db"
    fresh.parent.mkdir()
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", f"sqlite:///{fresh}")
    assert cli("db", "restore", str(target)).code == 0
    restored = Database(f"sqlite:///{fresh}")
    with restored.read() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1
    restored.dispose()


def test_what_cannot_be_restored_or_backed_up_is_refused(database, cli, tmp_path, monkeypatch):
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("just some text, long enough to not be a database header" * 20)
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as file:
        file.execute("CREATE TABLE things (id INTEGER)")
    for path, complaint in (
        (not_sqlite, "not an SQLite database"),
        (foreign, "not a dripcourse database"),
        (tmp_path / "missing.db", "no backup file"),
    ):
        result = cli("db", "restore", str(path), "--force")
        assert result.code == 2 and complaint in result.err, result.err
        assert result.err.count("\n") == 1

    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    refused = cli("db", "backup", str(tmp_path / "pg.db"))
    assert refused.code == 2 and "SQLite" in refused.err
