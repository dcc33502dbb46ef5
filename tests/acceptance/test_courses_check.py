"""`dripcourse courses check` as a course author meets it: problems and warnings on stderr as
`file:line: message`, a summary line per course on stdout, and exit status 1 on problems, or on
warnings too with `--strict`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# The `cli` and `cli_process` fixtures of tests/conftest.py: `cli(*args) -> CliResult(code, out, err)`.
CliRunner = Callable[..., Any]


def replace_line(file: Path, was: str, new: str) -> str:
    """Replace the first line starting with `was` by `new`; its `file:line`, for the messages."""
    lines = file.read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(lines, 1) if line.startswith(was))
    lines[number - 1] = new
    file.write_text("\n".join(lines), encoding="utf-8")
    return f"{file}:{number}"


def add_warnings(runners: Path) -> tuple[str, str]:
    """A subject too long in lesson 4 and a plain-http call to action in course.toml."""
    subject = replace_line(
        runners / "04-knees.md",
        "subject = ",
        'subject = "Lesson 4: Looking after your knees, on hills, on stairs and on long runs"',
    )
    booking = replace_line(
        runners / "course.toml",
        'url = "https://northside-physio.example/book"',
        'url = "http://northside-physio.example/book"',
    )
    return subject, booking


def test_the_shipped_course_passes_strict(cli: CliRunner) -> None:
    result = cli("courses", "check", "--strict")

    assert result.code == 0, result
    assert result.out == "runners: 10 lessons, ok\n"
    assert result.err == ""


def test_warnings_are_printed_as_file_line_and_do_not_fail_without_strict(
    cli: CliRunner, courses_dir: Path
) -> None:
    subject, booking = add_warnings(courses_dir / "runners")

    result = cli("courses", "check")

    assert result.code == 0, result
    assert result.err.splitlines() == [
        f"{subject}: warning: subject is 72 characters; many inboxes cut it at about 70",
        f"{booking}: warning: link http://northside-physio.example/book is not https",
    ]
    assert result.out == "runners: 10 lessons, 2 warning(s)\n"


def test_strict_makes_warnings_fail_the_check(cli_process: CliRunner, courses_dir: Path) -> None:
    add_warnings(courses_dir / "runners")

    result = cli_process("courses", "check", "--strict")

    assert result.code == 1, result
    assert result.out == "runners: 10 lessons, 2 warning(s)\n"
    assert len(result.err.splitlines()) == 2
    assert "Traceback" not in result.err


def test_problems_and_warnings_are_counted_apart_and_problems_fail(
    cli: CliRunner, courses_dir: Path
) -> None:
    runners = courses_dir / "runners"
    subject, booking = add_warnings(runners)
    feet = runners / "01-feet.md"
    with feet.open("a", encoding="utf-8") as lesson:
        lesson.write("\nSee you, {{ subscriber.nickname }}.\n")

    result = cli("courses", "check")

    assert result.code == 1, result
    assert result.out == "runners: 10 lessons, 1 problem(s), 2 warning(s)\n"
    problem, *warnings = result.err.splitlines()
    assert problem.startswith(f"{feet}:") and "nickname" in problem
    assert [line.split(": warning: ")[0] for line in warnings] == [subject, booking]


def test_a_readme_is_left_alone_and_a_misnamed_lesson_is_one_warning(
    cli: CliRunner, courses_dir: Path
) -> None:
    runners = courses_dir / "runners"
    (runners / "README.md").write_text("# Runners\n\nNotes for whoever edits this course.\n")
    (runners / "10-recovery.md").rename(runners / "recovery.md")

    result = cli("courses", "check")

    assert result.code == 0, result
    assert result.err == (
        f"{runners / 'recovery.md'}:1: warning: not read as lessons: recovery.md "
        "(a lesson file's name starts with its number, like 01-feet.md)\n"
    )
    assert result.out == "runners: 9 lessons, 1 warning(s)\n"
