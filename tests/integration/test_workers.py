"""Several sending workers on one database, as separate `dripcourse tick` processes: each lesson
arrives exactly once, and a worker killed mid-way costs at most its in-flight send group of repeats.

Four workers on PostgreSQL, two on one SQLite file. The state is built with bulk INSERTs by
`bench/setup_db.py`. 20,000 lessons on PostgreSQL, as the issue asks (about 30 s a test; the test
SMTP server parses a message only when a test reads it), 5,000 on SQLite, whose two workers take
turns at one file's lock; DRIPCOURSE_TEST_WORKER_LESSONS=4000 gives a quicker run while
developing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dripcourse.devtools.smtpserver import CapturingSMTPServer

pytestmark = [pytest.mark.both_databases, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LESSONS = {
    "postgresql": int(os.environ.get("DRIPCOURSE_TEST_WORKER_LESSONS", "20000")),
    "sqlite": int(os.environ.get("DRIPCOURSE_TEST_WORKER_LESSONS", "5000")),
}
NOW = "2026-03-02T14:00:00Z"  # an hour after bench/setup_db.py's lessons fell due
LATER = "2026-03-02T14:01:00Z"  # well after the claims of NOW have expired
LEASE_SECONDS = 2
SEND_GROUP = 100


def addresses(count: int) -> set[str]:
    return {f"reader{n}@example.com" for n in range(count)}


@pytest.fixture
def lessons(database_kind: str) -> int:
    return LESSONS[database_kind]


@pytest.fixture
def due(database_url: str, lessons: int) -> str:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "setup_db.py"),
            database_url,
            "--due",
            str(lessons),
            "--courses",
            str(ROOT / "emails"),
        ],
        check=True,
        capture_output=True,
        timeout=600,  # a guard against a hang, not a speed test
    )
    return database_url


@pytest.fixture
def workers(database_kind: str) -> int:
    return 4 if database_kind == "postgresql" else 2


def start_tick(url: str, smtpd: CapturingSMTPServer, now: str) -> subprocess.Popen[str]:
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "dripcourse"]
    env = {
        **os.environ,
        "DRIPCOURSE_DATABASE_URL": url,
        "DRIPCOURSE_EMAIL_BACKEND": smtpd.url,
        "DRIPCOURSE_SECRET_KEY": "test-secret-key",
        "DRIPCOURSE_WORKERS": "1",  # this process alone: the workers are the processes we start
        "DRIPCOURSE_LEASE_SECONDS": str(LEASE_SECONDS),
        "DRIPCOURSE_SEND_GROUP": str(SEND_GROUP),
    }
    env.pop("DRIPCOURSE_CONFIG", None)
    return subprocess.Popen(
        [*command, "tick", "--now", now, "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> int:
    """Wait for a worker; returns how many it reported sent."""
    # A guard against a hang, not a speed test: a loaded machine may take minutes.
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return int(out.split(": ")[1].split(" sent")[0])


def arrivals(smtpd: CapturingSMTPServer) -> Counter[str]:
    return Counter(address for m in smtpd.messages for address in m.rcpt_tos)


def test_workers_deliver_each_lesson_exactly_once(due, lessons, workers, smtpd):
    started = [start_tick(due, smtpd, NOW) for _ in range(workers)]
    sent = [finish(process) for process in started]
    received = arrivals(smtpd)
    # The guarantee: every lesson exactly once between them. How they shared the work is up to
    # the machine; a worker that started late and found nothing left is not a bug.
    assert sum(sent) == lessons
    assert set(received) == addresses(lessons)
    assert set(received.values()) == {1}
    assert len(smtpd.messages) == lessons


def test_a_killed_worker_repeats_at_most_its_send_group(due, lessons, workers, smtpd):
    started = [start_tick(due, smtpd, NOW) for _ in range(workers)]
    deadline = time.monotonic() + 60
    while len(smtpd.messages) < lessons // 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim, *others = started
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    for process in others:
        finish(process)
    # A minute later the killed worker's claims have expired: one more pass takes them over.
    finish(start_tick(due, smtpd, LATER))
    received = arrivals(smtpd)
    repeats = sum(received.values()) - len(received)
    print(f"{workers} workers, one killed: {len(smtpd.messages)} received, {repeats} repeated")
    assert set(received) == addresses(lessons)
    assert repeats <= SEND_GROUP
