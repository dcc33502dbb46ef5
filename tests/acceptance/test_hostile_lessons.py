"""A lesson file that tries to run a shell command through Jinja2 (server-side template injection):
`courses check` reports it as one `file:line: message` problem, `courses sync` refuses the course
with one line, and the command never runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# The `cli` fixture of tests/conftest.py: `cli(*args) -> CliResult(code, out, err)`.
CliRunner = Callable[..., Any]

COURSE_TOML = """\
title = "Hostile course"
brand = "Test Physio"

[sender]
name = "Test Physio"
email = "course@test.example"

[footer]
postal_address = "1 Example Street"
"""
LESSON = """\
+++
subject = "Lesson 1: Feet"
preheader = "Feet first"
title = "Feet"
+++
Hi {{{{ subscriber.first_name }}}},

{payload}
"""
PAYLOAD_LINE = 8


def hostile_course(courses_dir: Path, payload: str) -> Path:
    folder = courses_dir / "hostile"
    folder.mkdir()
    (folder / "course.toml").write_text(COURSE_TOML, encoding="utf-8")
    lesson = folder / "01-feet.md"
    lesson.write_text(LESSON.format(payload=payload), encoding="utf-8")
    return lesson


def test_check_reports_a_shell_command_in_a_lesson_and_runs_nothing(
    cli: CliRunner, courses_dir: Path
) -> None:
    lesson = hostile_course(courses_dir, "{{ cycler.__init__.__globals__.os.popen('id').read() }}")

    result = cli("courses", "check", str(lesson.parent))

    # Exit status 1 is `courses check`'s contract for a course with problems (README, --help).
    assert result.code == 1, result
    (line,) = result.err.splitlines()
    assert line.startswith(f"{lesson}:{PAYLOAD_LINE}: body: "), line
    assert "unsafe" in line
    assert result.out == "hostile: 1 lessons, 1 problem(s)\n"
    assert "uid=" not in result.out + result.err


def test_sync_refuses_the_course_in_one_line_and_runs_nothing(
    cli: CliRunner, courses_dir: Path, tmp_path: Path
) -> None:
    ran = tmp_path / "the-command-ran"
    lesson = hostile_course(
        courses_dir, f"{{{{ lipsum.__globals__.os.popen('touch {ran}').read() }}}}"
    )
    assert cli("db", "upgrade").code == 0

    result = cli("courses", "sync", str(lesson.parent))

    assert result.code == 1, result
    (line,) = result.err.splitlines()
    assert line.startswith("dripcourse: error: course 'hostile' not synced: 1 problem(s); first: ")
    assert f"{lesson}:{PAYLOAD_LINE}: body: " in line and "unsafe" in line
    assert "Traceback" not in result.err
    assert not ran.exists()
    assert "hostile" not in cli("courses", "list").out
