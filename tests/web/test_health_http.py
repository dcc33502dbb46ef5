"""`/healthz` and `/readyz` over real HTTP: ready with a migrated database; 503 with the reason
when the SQLite file is gone or is not a database, when the schema is behind, when PostgreSQL's
port is closed, when this process's scheduler has stopped, and when the database hangs (the
answer does not wait for it). Nothing secret in either body."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest
from api_server import serving

from dripcourse import __version__
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.store.db import Database
from dripcourse.web import health
from dripcourse.web.app import create_app


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)


def test_healthz_answers_without_a_token(settings: Settings, database: Database, clock) -> None:
    with serving(create_app(settings, database, clock)) as url:
        answer = get(f"{url}/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.both_databases
def test_readyz_with_a_migrated_database(settings: Settings, database: Database, clock) -> None:
    with serving(create_app(settings, database, clock)) as url:
        answer = get(f"{url}/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "scheduler": "not in this process"},
    }


def test_readyz_when_the_sqlite_file_is_removed(
    settings: Settings, database: Database, clock, tmp_path: Path
) -> None:
    path = Path(database.url.removeprefix("sqlite:///"))
    if database.dialect != "sqlite":
        pytest.skip("an SQLite file")
    with serving(create_app(settings, database, clock)) as url:
        assert get(f"{url}/readyz").status_code == 200  # the pool now holds a connection
        path.rename(tmp_path / "moved-away.db")
        answer = get(f"{url}/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"status": "unavailable", "reason": health.UNREACHABLE}
        assert not path.exists(), "the check must not make an empty database in its place"
        (tmp_path / "moved-away.db").rename(path)
        assert get(f"{url}/readyz").status_code == 200


def test_readyz_when_the_file_is_not_a_database(
    settings: Settings, database: Database, clock
) -> None:
    if database.dialect != "sqlite":
        pytest.skip("an SQLite file")
    path = Path(database.url.removeprefix("sqlite:///"))
    with serving(create_app(settings, database, clock)) as url:
        assert get(f"{url}/readyz").status_code == 200
        for suffix in ("", "-wal", "-shm"):  # a WAL holding page 1 would still read as valid
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(b"this is not an SQLite database, whatever its name says\n" * 100)
        answer = get(f"{url}/readyz")
    assert answer.status_code == 503
    assert answer.json()["reason"] == health.UNREACHABLE


def test_readyz_when_the_schema_is_behind(tmp_path: Path, clock) -> None:
    empty = tmp_path / "empty.db"
    database = Database(f"sqlite:///{empty}")
    try:
        with database.transaction() as session:  # a real SQLite file, without our tables
            session.connection().exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
        settings = Settings(database_url=database.url)
        with serving(create_app(settings, database, clock)) as url:
            answer = get(f"{url}/readyz")
    finally:
        database.dispose()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "reason": health.BEHIND}


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])  # closed again when the block ends


def test_readyz_when_postgresql_does_not_answer(clock: FixedClock) -> None:
    url = f"postgresql+psycopg://dripcourse:pw-Hq8x@127.0.0.1:{closed_port()}/gone"
    database = Database(url)
    try:
        with serving(create_app(Settings(database_url=url), database, clock)) as base:
            answer = get(f"{base}/readyz")
    finally:
        database.dispose()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "reason": health.UNREACHABLE}
    assert "pw-Hq8x" not in answer.text and "127.0.0.1" not in answer.text


def test_readyz_when_the_scheduler_has_stopped(
    settings: Settings, database: Database, clock
) -> None:
    running = threading.Event()
    app = create_app(settings, database, clock, scheduler_alive=running.is_set)
    with serving(app) as url:
        stopped = get(f"{url}/readyz")
        running.set()
        alive = get(f"{url}/readyz")
    assert stopped.status_code == 503
    assert stopped.json()["reason"] == health.NO_SCHEDULER
    assert alive.status_code == 200
    assert alive.json()["checks"]["scheduler"] == "ok"


def test_a_hanging_database_gets_503_and_no_pile_of_checks(
    settings: Settings, database: Database, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that takes a connection and never answers: the probe answers 503 at its
    deadline, and probes meanwhile do not start more checks that would hang too."""
    release, calls = threading.Event(), []

    def hangs(self: health.Readiness) -> str | None:
        calls.append(1)
        release.wait(30)
        return None

    monkeypatch.setattr(health.Readiness, "_check_database", hangs)
    monkeypatch.setattr(health, "READY_TIMEOUT", 0.2)
    app = create_app(settings, database, clock)
    with serving(app) as url:
        try:
            first = get(f"{url}/readyz")
            second = get(f"{url}/readyz")
        finally:
            release.set()
    assert first.status_code == 503 and first.json()["reason"] == health.SLOW
    assert second.status_code == 503 and second.json()["reason"] == health.STILL_WAITING
    assert len(calls) == 1


def test_the_bodies_say_nothing_an_outsider_could_use(
    settings: Settings, database: Database, clock
) -> None:
    with serving(create_app(settings, database, clock)) as url:
        bodies = [get(f"{url}/{path}").text for path in ("healthz", "readyz")]
    for body in bodies:
        assert settings.database_url not in body
        assert str(settings.courses_dir) not in body
        assert __version__ not in body
        assert "sqlite" not in body.lower() and "postgres" not in body.lower()
