"""`dripcourse courses sync` with one course broken among good ones: the good ones are synced, the
broken one is refused by name with its first problem as `file:line: message`, and the exit status
is 1, so a script sees that not everything went in."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The `cli` fixture of tests/conftest.py: `cli(*args) -> CliResult(code, out, err)`.
CliRunner = Callable[..., Any]


def break_lesson(lesson: Path, line: int) -> None:
    lines = lesson.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = "Hi {{ subscriber.nme }},"
    lesson.write_text("\n".join(lines), encoding="utf-8")


def test_sync_loads_the_good_courses_and_refuses_the_broken_one_by_name(
    cli: CliRunner, courses_dir: Path
) -> None:
    for slug in ("walkers", "hikers"):
        shutil.copytree(courses_dir / "runners", courses_dir / slug)
    broken = courses_dir / "walkers" / "05-hips.md"
    break_lesson(broken, 38)
    assert cli("db", "upgrade").code == 0

    result = cli("courses", "sync")

    assert result.code == 1, result
    assert result.out.splitlines() == [
        "hikers: 10 added, 0 updated, 0 retired, 6 image(s) added",
        "runners: 10 added, 0 updated, 0 retired, 6 image(s) added",
    ]
    assert result.err.splitlines() == [
        "dripcourse: error: course 'walkers' not synced: 1 problem(s); first: "
        f"{broken}:38: body: unknown field subscriber.nme; known: email, fields, first_name, name, timezone"
    ]
    listed = cli("courses", "list").out
    assert "hikers" in listed and "runners" in listed and "walkers" not in listed


def test_a_course_refused_keeps_what_its_last_good_sync_loaded(
    cli: CliRunner, courses_dir: Path
) -> None:
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    runners = courses_dir / "runners"
    (runners / "10-recovery.md").unlink()
    break_lesson(runners / "05-hips.md", 38)

    result = cli("courses", "sync")

    assert result.code == 1, result
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert "(10 lessons," in cli("courses", "list").out
