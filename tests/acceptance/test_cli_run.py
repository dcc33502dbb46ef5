"""Sending, as an operator does it: `dripcourse run` as a real long-running process that a signal
stops cleanly, a test send, a preview, a lesson queued outside the rhythm, and the `queue` and
`status` views that tell what is owed and what went out."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer

# The `cli` fixture of tests/conftest.py: `cli(*args) -> CliResult(code, out, err)`.
CliRunner = Callable[..., Any]

NOW = "2026-03-02T15:00:00+00:00"  # Monday 10:00 in Toronto
SOON = "2026-03-02T15:05:00+00:00"
LESSON_1_IN_TORONTO = "2026-03-03T13:00:00+00:00"  # Tuesday 08:00 in Toronto
WAIT = 10.0
SUBSCRIBE_ADA = ("subscribe", "ada@example.com", "--course", "runners", "--confirmed")


def ok(result: Any) -> Any:
    assert result.code == 0, result
    return result


def count(settings: Settings, table: str, where: str = "1") -> int:
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0])


def subjects(smtpd: CapturingSMTPServer) -> list[str]:
    return [str(m.message["Subject"]) for m in smtpd.messages]


def wait_for_messages(smtpd: CapturingSMTPServer, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while len(smtpd.messages) < n:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"`dripcourse run` exited early ({proc.returncode}): {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{n} message(s) did not arrive within {WAIT:.0f} s: {subjects(smtpd)}")
        time.sleep(0.05)


@pytest.fixture
def ready(cli: CliRunner, settings: Settings) -> Settings:
    ok(cli("db", "upgrade"))
    ok(cli("courses", "sync"))
    return settings


@pytest.fixture
def run_process(
    ready: Settings, cli_env: dict[str, str], tmp_path: Path
) -> Iterator[subprocess.Popen[str]]:
    """`dripcourse run` as a real process on the ready database, one dispatch pass a second."""
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "dripcourse"]
    proc = subprocess.Popen(
        [*command, "run"],
        env={**os.environ, **cli_env, "DRIPCOURSE_DISPATCH_INTERVAL": "1"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=WAIT)


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_run_sends_what_is_due_and_stops_cleanly_on_a_signal(
    stop_with: signal.Signals,
    cli: CliRunner,
    ready: Settings,
    smtpd: CapturingSMTPServer,
    run_process: subprocess.Popen[str],
) -> None:
    a_week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    ok(cli(*SUBSCRIBE_ADA, "--now", a_week_ago))

    wait_for_messages(smtpd, 1, run_process)
    (message,) = smtpd.messages
    assert message.rcpt_tos == ("ada@example.com",)
    assert str(message.message["Subject"]) == "Lesson 1: Feet first"

    run_process.send_signal(stop_with)
    try:
        _, err = run_process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`dripcourse run` did not stop within {WAIT:.0f} s of {stop_with.name}")

    assert run_process.returncode == 0, err
    assert "Traceback" not in err, err
    assert count(ready, "deliveries", "status = 'sent'") == 1
    assert count(ready, "deliveries", "status = 'sending'") == 0


def test_send_test_mails_one_marked_copy_and_records_nothing(
    cli: CliRunner, ready: Settings, smtpd: CapturingSMTPServer
) -> None:
    result = ok(cli("lessons", "send-test", "runners", "1", "--to", "me@example.com"))

    assert "me@example.com" in result.out
    (message,) = smtpd.messages
    assert message.rcpt_tos == ("me@example.com",)
    assert str(message.message["Subject"]) == "[Test] Lesson 1: Feet first"
    assert count(ready, "deliveries") == 0


def test_preview_writes_the_html_and_prints_the_text(
    cli: CliRunner, ready: Settings, tmp_path: Path, smtpd: CapturingSMTPServer
) -> None:
    target = tmp_path / "preview" / "ankles.html"
    target.parent.mkdir()

    result = ok(cli("lessons", "preview", "runners", "2", "-o", str(target)))

    html = target.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "Ankles that bend and balance" in html
    assert result.out.startswith("Subject: Lesson 2: Ankles that bend and balance\n")
    assert "LESSON 2 OF 10" in result.out and "Hi Sam," in result.out
    assert "<html" not in result.out.lower() and "<p>" not in result.out
    assert smtpd.messages == []
    assert count(ready, "deliveries") == 0


def show_next_due(cli: CliRunner, email: str) -> str:
    shown = ok(cli("subscribers", "show", email)).out
    match = re.search(r"runners: (\w+); next lesson due (.+)", shown)
    assert match, shown
    return f"{match[1]} {match[2]}"


def test_a_queued_lesson_goes_out_as_an_extra_and_the_rhythm_is_unchanged(
    cli: CliRunner, ready: Settings, smtpd: CapturingSMTPServer
) -> None:
    ok(cli(*SUBSCRIBE_ADA, "--now", NOW))
    rhythm = show_next_due(cli, "ada@example.com")
    assert rhythm == "active 2026-03-03 08:00 America/Toronto"

    queued = ok(cli("lessons", "queue", "runners", "3", "--to", "ada@example.com", "--now", NOW))
    assert "for 1 person" in queued.out
    tick = ok(cli("tick", "--now", SOON))

    assert "lesson 3 (calves-achilles) [queued by operator]" in tick.out, tick.out
    assert subjects(smtpd) == ["Lesson 3: Calves and the Achilles"]
    assert smtpd.messages[0].rcpt_tos == ("ada@example.com",)
    assert show_next_due(cli, "ada@example.com") == rhythm

    # The weekly rhythm goes on where it was: lesson 1 at its slot, not lesson 4.
    ok(cli("tick", "--now", LESSON_1_IN_TORONTO))
    assert subjects(smtpd)[1:] == ["Lesson 1: Feet first"]


def queue_lines(cli: CliRunner) -> dict[str, str]:
    """`{email: line}` of `dripcourse queue`, in the order printed."""
    lines = ok(cli("queue")).out.splitlines()
    return {next(w for w in line.split() if "@" in w): line for line in lines}


def test_queue_lists_what_is_owed_in_local_time_and_utc(cli: CliRunner, ready: Settings) -> None:
    ok(cli(*SUBSCRIBE_ADA, "--now", NOW))
    ok(
        cli(
            *("subscribe", "bob@example.com", "--course", "runners", "--confirmed"),
            *("--timezone", "Asia/Kolkata", "--now", NOW),
        )
    )
    ok(cli("subscribe", "cy@example.com", "--course", "runners", "--now", NOW))

    lines = queue_lines(cli)

    assert sorted(lines) == ["ada@example.com", "bob@example.com", "cy@example.com"]
    ada, bob, cy = lines["ada@example.com"], lines["bob@example.com"], lines["cy@example.com"]
    assert "2026-03-03 13:00 UTC" in ada and "2026-03-03 08:00 America/Toronto" in ada
    assert "owed" in ada and ada.endswith("1 feet")
    assert "2026-03-03 02:30 UTC" in bob and "2026-03-03 08:00 Asia/Kolkata" in bob
    assert "owed" in bob and bob.endswith("1 feet")
    assert "2026-03-02 15:00 UTC" in cy and "2026-03-02 10:00 America/Toronto" in cy
    assert "pending" in cy and cy.endswith("confirmation")
    # Soonest first.
    assert list(lines) == ["cy@example.com", "bob@example.com", "ada@example.com"]


def test_status_counts_match_what_happened(
    cli: CliRunner, ready: Settings, smtpd: CapturingSMTPServer
) -> None:
    for email in ("ada@example.com", "bob@example.com", "cy@example.com"):
        ok(cli("subscribe", email, "--course", "runners", "--confirmed", "--now", NOW))
    ok(cli("subscribe", "dot@example.com", "--course", "runners", "--now", NOW))
    ok(cli("pause", "bob@example.com", "--now", NOW))
    ok(cli("unsubscribe", "cy@example.com", "--now", NOW))
    ok(cli("lessons", "queue", "runners", "2", "--to", "ada@example.com", "--now", NOW))
    smtpd.fail_recipient("ada@example.com", 451)
    ok(cli("tick", "--now", SOON))

    out = ok(cli("status", "--now", SOON)).out

    assert "subscribers:  4\n" in out
    assert "enrolments:   active 1, paused 1, pending 1, unsubscribed 1\n" in out
    # dot's confirmation went out; ada's queued lesson met a 451 and waits for its retry.
    assert "deliveries:   pending 1, sent 1\n" in out
    assert "suppressions: unsubscribed 1\n" in out
    assert "failed in the last 24 h: 0\n" in out
    assert count(ready, "subscribers") == 4
    assert count(ready, "deliveries", "status = 'sent'") == 1
    assert count(ready, "deliveries", "status = 'pending'") == 1
    assert subjects(smtpd) == ["Please confirm your subscription to Runners E-Course"]
