"""The reliability tier: the promises of README's "Delivery and its guarantees", each proved by a
fault injected for real (a killed process, a server that answers 4xx or 5xx, is down, hangs, or
refuses the log-in), against the installed `dripcourse` command, a real SQLite file and a real
SMTP server on loopback.

Self-contained on purpose: an `Installation` is a database file, a copy of the example course and
the DRIPCOURSE_* variables an operator would set; the state (N subscribers whose lesson 1 is due)
is written with bulk INSERTs, as `bench/setup_db.py` does, because the point is the state, not how
it was reached.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store import migrations
from dripcourse.store.db import Database
from dripcourse.store.models import Course, Enrollment, Subscriber

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_COURSES = ROOT / "emails"
DUE = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
"""When lesson 1 is due for everyone built here (unless told otherwise)."""
ZONES = ["America/Toronto", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "UTC"]

_executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
COMMAND = [_executable] if _executable else [sys.executable, "-m", "dripcourse"]


def reader(n: int) -> str:
    return f"reader{n}@example.com"


def build(url: str, courses: Path, due: int, at: datetime = DUE) -> None:
    """The runners course and `due` confirmed subscribers whose lesson 1 is due at `at`."""
    database = Database(url)
    migrations.upgrade(database)
    joined = at - timedelta(days=1)
    with database.transaction() as session:
        sync_course(session, load_sources(courses)[0], joined)
        course_id = session.scalars(select(Course.id)).one()
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": reader(n),
                    "name": f"Reader {n}",
                    "timezone": ZONES[n % len(ZONES)],
                    "created_at": joined,
                }
                for n in range(due)
            ],
        )
        ids = dict(session.execute(select(Subscriber.email, Subscriber.id)).all())
        session.execute(
            insert(Enrollment),
            [
                {
                    "subscriber_id": ids[reader(n)],
                    "course_id": course_id,
                    "status": "active",
                    "source": "reliability",
                    "created_at": joined,
                    "confirmed_at": joined,
                    "next_due_at": at,
                }
                for n in range(due)
            ],
        )
    database.dispose()


def instant(at: datetime) -> str:
    return at.isoformat()


@dataclass
class Installation:
    """One operator's set-up: a database file, a course folder and the environment."""

    home: Path
    backend: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.home / "dripcourse.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def environment(self, backend: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPCOURSE_")}
        env.update(
            {
                "DRIPCOURSE_DATABASE_URL": self.url,
                "DRIPCOURSE_EMAIL_BACKEND": backend or self.backend,
                "DRIPCOURSE_BASE_URL": "https://courses.example.org",
                "DRIPCOURSE_COURSES_DIR": str(self.home / "emails"),
                "DRIPCOURSE_SECRET_KEY": "reliability-secret-key",
                "DRIPCOURSE_WORKERS": "1",
            }
        )
        env.update(self.env)
        env.update(extra)
        return env

    def start(self, *args: str, backend: str | None = None, **extra: str) -> subprocess.Popen[str]:
        """`dripcourse ARGS...` as a real process, left running."""
        return subprocess.Popen(
            [*COMMAND, *args],
            env=self.environment(backend, **extra),
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, *args: str, backend: str | None = None, timeout: float = 60, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """`dripcourse ARGS...` as a real process, to its end."""
        return subprocess.run(
            [*COMMAND, *args],
            env=self.environment(backend, **extra),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def tick(
        self, at: datetime, *args: str, backend: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        done = self.run("tick", "--now", instant(at), "-q", *args, backend=backend, **extra)
        assert done.returncode == 0, done.stderr
        return done

    def rows(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.path) as connection:
            return connection.execute(sql, params).fetchall()

    def statuses(self) -> Counter[str]:
        return Counter(
            {
                str(s): int(str(n))
                for s, n in self.rows("SELECT status, count(*) FROM deliveries GROUP BY status")
            }
        )


Installer = Callable[..., Installation]


@pytest.fixture
def installation(tmp_path: Path) -> Installer:
    """`installation(n, backend, at=DUE)`: a fresh set-up with `n` subscribers due at `at`."""
    shutil.copytree(EXAMPLE_COURSES, tmp_path / "emails")

    def make(n: int, backend: str, at: datetime = DUE) -> Installation:
        made = Installation(tmp_path, backend)
        build(made.url, tmp_path / "emails", n, at)
        return made

    return make


@pytest.fixture
def server() -> Iterator[CapturingSMTPServer]:
    with CapturingSMTPServer() as running:
        yield running


def per_recipient(server: CapturingSMTPServer, subject_prefix: str = "Lesson 1:") -> Counter[str]:
    """How many copies of the lesson each recipient received."""
    return Counter(
        m.rcpt_tos[0]
        for m in server.messages
        if str(m.message["Subject"]).startswith(subject_prefix)
    )
