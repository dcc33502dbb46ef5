"""Finding 8: every file that holds personal data or the secret key is 0600, and every folder we
make for them 0700, whatever the umask: the database with its -wal and -shm files, backups and
restores, the demo's folder, the file backend's mail, and `lessons preview -o`."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from dripcourse.config import Settings
from dripcourse.store.db import Database, sqlite_path
from dripcourse.store.privatefiles import make_private_dir, write_private


@pytest.fixture(autouse=True, params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Autouse, so it is set before the other fixtures make the database."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def database_file(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def companions(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-writers.lock")]


def ok(result):  # type: ignore[no-untyped-def]
    assert result.code == 0, result.err
    return result


@pytest.fixture
def ready(cli, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Migrated through the CLI, the course synced, and no configured key: the generated secret key
    is kept in the database."""
    monkeypatch.setenv("DRIPCOURSE_SECRET_KEY", "")
    ok(cli("db", "upgrade"))
    ok(cli("courses", "sync"))
    return settings


def test_a_new_database_with_the_secret_key_and_its_wal_and_shm_are_0600(ready, cli, tmp_path):
    target = tmp_path / "lesson.html"
    ok(cli("lessons", "preview", "runners", "1", "-o", str(target)))  # generates the secret key
    path = database_file(ready)
    with closing(sqlite3.connect(path)) as file:
        assert file.execute("SELECT count(*) FROM app_meta").fetchone()[0] == 1
    database = Database(ready.database_url)
    try:
        with database.transaction() as session:
            session.connection().exec_driver_sql("UPDATE app_meta SET value = value")
        # The pooled connection stays open, so SQLite keeps its -wal and -shm.
        for each in [path, *companions(path)]:
            assert each.exists(), each
            assert mode(each) == 0o600, each
    finally:
        database.dispose()
    assert mode(target) == 0o600


def test_an_existing_0644_database_and_its_companions_are_tightened_when_opened(settings, cli):
    path = database_file(settings)
    with closing(sqlite3.connect(path)) as old:
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE earlier (x)")
        old.commit()  # -wal and -shm stay while this connection is open
        loose = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        for each in loose:
            os.chmod(each, 0o644)

        ok(cli("db", "upgrade"))

        for each in loose:
            assert mode(each) == 0o600, each


def test_a_backup_and_a_restored_database_are_0600(ready, cli, tmp_path, monkeypatch):
    backup = tmp_path / "backup.db"
    ok(cli("db", "backup", str(backup)))
    assert mode(backup) == 0o600
    assert not Path(f"{backup}.partial").exists()

    restored = tmp_path / "restored.db"
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", f"sqlite:///{restored}")
    ok(cli("db", "restore", str(backup)))
    assert mode(restored) == 0o600


def test_the_file_backend_makes_its_folders_0700_and_each_message_0600(
    ready, cli, tmp_path, monkeypatch
):
    folder = tmp_path / "outbox" / "mail"
    monkeypatch.setenv("DRIPCOURSE_EMAIL_BACKEND", f"file://{folder}")
    ok(cli("lessons", "send-test", "runners", "1", "--to", "me@example.com"))

    (message,) = folder.glob("*.eml")
    assert mode(message) == 0o600
    assert mode(folder) == mode(folder.parent) == 0o700


def test_preview_replacing_a_0644_file_leaves_it_0600(ready, cli, tmp_path):
    target = tmp_path / "preview.html"
    target.write_text("old")
    os.chmod(target, 0o644)
    ok(cli("lessons", "preview", "runners", "2", "-o", str(target)))
    assert mode(target) == 0o600
    assert "Ankles" in target.read_text(encoding="utf-8")


def test_the_demo_folder_is_0700_and_everything_in_it_0600(cli, tmp_path):
    folder = tmp_path / "new" / "demo"
    ok(cli("demo", "--dir", str(folder), "--weeks", "1"))

    folders = [folder.parent, *(p for p in folder.rglob("*") if p.is_dir()), folder]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"demo.db", "lesson-01.html"}
    assert any(p.suffix == ".eml" for p in files)
    assert {p: mode(p) for p in folders} == dict.fromkeys(folders, 0o700)
    assert {p: mode(p) for p in files} == dict.fromkeys(files, 0o600)


def test_a_umask_that_takes_the_owners_bits_still_leaves_0600_and_0700(tmp_path):
    os.umask(0o277)  # the fixture restores the umask afterwards
    make_private_dir(tmp_path / "a" / "b")
    write_private(tmp_path / "a" / "b" / "file", b"data")
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "file") == 0o600


def test_memory_and_postgresql_urls_name_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://host/db"):
        assert sqlite_path(url) is None
    database = Database("sqlite://")
    with database.transaction() as session:
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
    database.dispose()
    assert list(tmp_path.iterdir()) == []
