"""Fixtures shared by the whole test suite: a real SMTP server, a real SQLite file, a fixed clock,
a copy of the example course, and the CLI run in-process or as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from debian_tools import CHROMIUM, CHROMIUM_ARGS, missing_tool
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from dripcourse.cli.main import main
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store import migrations
from dripcourse.store.db import Database

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# --- PostgreSQL (issue 6): tests marked `both_databases` run on SQLite and on PostgreSQL, tests
# marked `postgres` on PostgreSQL only. Every other test keeps its single SQLite variant (and id).
POSTGRES_URL_VARIABLE = "DRIPCOURSE_TEST_POSTGRES_URL"
NO_POSTGRES = f"{POSTGRES_URL_VARIABLE} is not set"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_kind" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("postgres"):
        metafunc.parametrize("database_kind", ["postgresql"], indirect=True)
    elif metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database_kind", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database_kind(request: pytest.FixtureRequest) -> str:
    """The database to test on: sqlite, unless the test opted in (see `pytest_generate_tests`)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def postgres_url() -> str:
    """The server's URL; skips without it, fails on CI (which provides PostgreSQL)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{NO_POSTGRES} (CI must provide PostgreSQL)")
        pytest.skip(NO_POSTGRES)
    return url


@pytest.fixture
def database_url(
    database_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A SQLite file, or a fresh PostgreSQL schema of its own (dropped afterwards)."""
    if database_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'dripcourse.db'}"
        return
    with fresh_postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    """A second, empty database on PostgreSQL beside the test's own (a target to copy to)."""
    with fresh_postgres_schema(postgres_url) as url:
        yield url


@contextmanager
def fresh_postgres_schema(server_url: str) -> Iterator[str]:
    """A new empty schema `t_<random>` on the server; yields a URL whose connections use only it
    (libpq's `options=-csearch_path=...`), and drops it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '10s'")
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_COURSES = ROOT / "emails"
# A Monday afternoon in early March: weeks from here cross the DST changes of North America,
# Europe and Australia.
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def smtpd() -> Iterator[CapturingSMTPServer]:
    """A real SMTP server on 127.0.0.1 and a free port that records what it receives.

    See `dripcourse.devtools.smtpserver.CapturingSMTPServer`: `.url`, `.host`, `.port`, `.messages`,
    `.connections`, `fail_recipient()`, `fail_next()`, `reset()`.
    """
    with CapturingSMTPServer() as server:
        yield server


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def courses_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped courses, free to edit."""
    target = tmp_path / "emails"
    shutil.copytree(EXAMPLE_COURSES, target)
    return target


@pytest.fixture
def settings(database_url: str, courses_dir: Path, smtpd: CapturingSMTPServer) -> Settings:
    return Settings(
        database_url=database_url,  # a SQLite file, or a PostgreSQL schema (see above)
        email_backend=smtpd.url,
        base_url="https://courses.example.org",
        courses_dir=courses_dir,
        secret_key="test-secret-key",
    )


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file made by the migrations, for each test's `database` to start as a copy of:
    migrating took most of a test's setup, and the schema is the same for each."""
    path = tmp_path_factory.mktemp("migrated") / "dripcourse.db"
    template = Database(f"sqlite:///{path}")
    migrations.upgrade(template)
    template.dispose()
    return path


@pytest.fixture
def database(settings: Settings, migrated_sqlite: Path) -> Iterator[Database]:
    """A real SQLite file (or PostgreSQL schema) with the schema made by the migrations: a new
    SQLite file starts as a copy of `migrated_sqlite` (upgrading it then finds nothing to do)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        shutil.copyfile(migrated_sqlite, url.database)
        os.chmod(url.database, 0o600)
    db = Database(settings.database_url)
    migrations.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def synced(database: Database, courses_dir: Path, clock: FixedClock) -> Database:
    """The database with the runners course loaded."""
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    return database


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The DRIPCOURSE_* variables a user would set, pointing at this test's files and server."""
    env = {
        "DRIPCOURSE_DATABASE_URL": settings.database_url,
        "DRIPCOURSE_EMAIL_BACKEND": settings.email_backend,
        "DRIPCOURSE_BASE_URL": settings.base_url,
        "DRIPCOURSE_COURSES_DIR": str(settings.courses_dir),
        "DRIPCOURSE_SECRET_KEY": settings.secret_key or "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DRIPCOURSE_CONFIG", raising=False)
    return env


@pytest.fixture
def cli(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run `dripcourse ARGS...` in this process (fast); returns exit code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_process(cli_env: dict[str, str], tmp_path: Path) -> CliRunner:
    """Run the installed `dripcourse` console script as a real subprocess."""
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "dripcourse"]

    def run(*args: str) -> CliResult:
        done = subprocess.run(
            [*command, *args],
            env={**os.environ, **cli_env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


# -- a browser for the page and email tests --------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one for the whole run (Playwright's sync API allows only one
    driver at a time, and starting it is the slow part). Playwright is imported here, so that the
    tests that need no browser run without it installed."""
    if not CHROMIUM.exists():
        missing_tool(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
