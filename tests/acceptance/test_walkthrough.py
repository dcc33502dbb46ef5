"""The README's step-by-step block, run as written in a fresh folder on the real date (issue 12):
a newcomer who copies it line by line after the quick start sees lesson 1 printed by `tick`, and
`run` sending what is owed now until it is stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def step_by_step() -> list[str]:
    """The commands of the block, continuation lines joined."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your first course, step by step", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    text = block.group(1).replace("\\\n", " ")
    return [line for line in text.splitlines() if line.strip()]


def test_the_guide_works_as_written_in_a_fresh_folder(tmp_path: Path) -> None:
    folder = tmp_path / "newcomer"
    folder.mkdir()
    # What the quick start leaves behind: the virtual environment and the example course.
    (folder / ".venv").symlink_to(Path(sys.prefix))
    shutil.copytree(ROOT / "emails", folder / "emails")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPCOURSE_")}
    env["PATH"] = "/usr/bin:/bin"  # dripcourse is found only through the guide's first line

    commands = step_by_step()
    *before, last = commands
    assert last.split("#")[0].strip() == "dripcourse run"
    done = subprocess.run(
        ["bash", "-e", "-c", "\n".join(before)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard
    )
    assert done.returncode == 0, done.stderr
    assert "runners: 10 added" in done.stdout
    assert "Subject: Lesson 1: Feet first" in done.stdout
    assert "tick at 2026-03-03 15:00 UTC: 1 sent" in done.stdout

    exports = "\n".join(line for line in before if line.startswith(("source", "export")))
    running = subprocess.Popen(
        ["bash", "-e", "-c", f"{exports}\nexec {last}"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a hang guard, not a speed test
    while time.monotonic() < deadline and not _lesson_two_sent(folder, running):
        time.sleep(0.5)
    running.send_signal(signal.SIGINT)  # Ctrl-C, as the guide says
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
    assert "Subject: Lesson 2: Ankles that bend and balance" in out
    assert "Traceback" not in err


def _lesson_two_sent(folder: Path, running: subprocess.Popen[str]) -> bool:
    """Has `run` sent lesson 2 (or ended)? Asked of the database: its output is read at the end."""
    with sqlite3.connect(folder / "dripcourse.db") as connection:
        (sent,) = connection.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'sent'"
        ).fetchone()
    return bool(sent >= 2) or running.poll() is not None
