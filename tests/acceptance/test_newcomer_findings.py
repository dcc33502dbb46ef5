"""Issue 12's findings, each as the command a newcomer typed: one readable answer, never a
traceback, and the right thing done."""

from __future__ import annotations

import shutil
import sys

import pytest


@pytest.fixture
def course(cli):
    for step in (("db", "upgrade"), ("courses", "sync")):
        assert cli(*step).code == 0
    return cli


def test_resume_after_a_pause_dated_later_gives_back_the_course_unchanged(course):
    cli = course
    start = "2026-12-01T12:00:00Z"
    assert cli("subscribe", "ada@example.com", "--course", "runners", "--confirmed", "--now", start)
    before = cli("status", "--now", start).out
    assert cli("pause", "ada@example.com", "--now", "2026-12-03T00:00:00Z").code == 0

    resumed = cli("resume", "ada@example.com", "--now", "2026-12-02T09:00:00Z")

    assert resumed.code == 0, resumed.err
    assert "Traceback" not in resumed.err
    assert cli("status", "--now", start).out == before
    day = cli("tick", "--now", "2026-12-02T15:00:00Z")
    assert "1 sent" in day.out, day.out


def test_a_negative_dispatch_interval_is_refused_at_start_up(cli_process, monkeypatch):
    monkeypatch.setenv("DRIPCOURSE_DISPATCH_INTERVAL", "-5")
    done = cli_process("run")  # a hang here would be the finding: the timeout only guards it
    assert done.code == 2
    assert done.err.strip().splitlines() == [
        "dripcourse: error: setting dispatch_interval (DRIPCOURSE_DISPATCH_INTERVAL): -5 is out "
        "of range; use 1 to 86400"
    ]


def test_an_unterminated_quote_names_its_line_and_loses_no_row_silently(course, tmp_path):
    cli = course
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name\n"  # line 1
        "ann@example.com,Ann\n"  # line 2
        'bob@example.com,"Bob\n'  # line 3: the quote is never closed
        "cat@example.com,Cat\ndan@example.com,Dan\neve@example.com,Eve\n"
    )
    result = cli("subscribers", "import", str(path), "--course", "runners", "--confirmed")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "line 3: a quoted field starts in this row and is never closed" in line
    assert "ann@example.com" not in cli("subscribers", "list").out, "nothing half-imported"


def test_confirmed_by_the_operator_the_waiting_confirmation_is_cancelled(course):
    cli = course
    now = ("--now", "2026-12-01T12:00:00Z")
    assert cli("subscribe", "bob@example.com", "--course", "runners", *now).code == 0
    assert "confirmation" in cli("queue").out

    done = cli("subscribe", "bob@example.com", "--course", "runners", "--confirmed", *now)

    assert done.code == 0, done.err
    queue = cli("queue").out
    assert "confirmation" not in queue, queue
    tick = cli("tick", "--now", "2026-12-02T15:00:00Z")
    assert "1 sent" in tick.out, tick.out  # lesson 1, and no confirmation email after it


def test_a_second_course_within_the_hour_gets_its_own_confirmation_an_hour_later(
    course, courses_dir, smtpd
):
    cli = course
    shutil.copytree(courses_dir / "runners", courses_dir / "walkers")
    assert cli("courses", "sync").code == 0
    at = ("--now", "2026-12-01T12:00:00Z")
    assert cli("subscribe", "ada@example.com", "--course", "runners", *at).code == 0
    cli("tick", *at)

    second = cli(
        "subscribe", "ada@example.com", "--course", "walkers", "--now", "2026-12-01T12:10Z"
    )

    assert second.code == 0, second.err
    assert "subscribed ada@example.com to walkers; a confirmation email is queued for" in second.out
    assert "already enrolled" not in second.out
    assert "0 sent" in cli("tick", "--now", "2026-12-01T12:30:00Z").out
    assert "1 sent" in cli("tick", "--now", "2026-12-01T13:00:00Z").out
    confirm_links = [m for m in smtpd.messages if "/confirm/" in m.message.as_string()]
    assert len(confirm_links) == 2


def one_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def test_typos_are_not_silent(course):
    cli = course
    forgot = cli("subscribers", "forget", "nobody@example.com")
    assert forgot.code == 1 and "no subscriber nobody@example.com" in one_line(forgot)

    listed = cli("subscribers", "list", "--course", "nosuch")
    assert listed.code == 2 and "unknown course 'nosuch'" in one_line(listed)

    cli("subscribe", "bob@example.com", "--course", "runners", "--confirmed")
    cli("unsubscribe", "bob@example.com")
    back = cli("subscribe", "bob@EXAMPLE.com", "--course", "runners")
    assert back.code == 0 and "had unsubscribed from all mail" in back.out, back.out

    zone = cli("subscribe", "x@example.com", "--course", "runners", "--timezone", "EST")
    assert zone.code == 2 and "America/New_York" in one_line(zone)


@pytest.mark.parametrize(
    "args",
    [
        ("lessons", "preview", "runners", "1", "-o", "/nonexistent/dir/x.html"),
        ("db", "upgrade", "--revision", "9999"),
        ("demo", "--dir", "/proc/nope", "--weeks", "1"),
    ],
    ids=["preview-to-a-missing-folder", "unknown-revision", "demo-where-nothing-can-be-made"],
)
def test_each_finding_is_one_line_and_exit_2(course, args):
    result = course(*args)
    assert result.code == 2
    assert one_line(result).startswith("dripcourse: error:")


def test_a_database_in_a_missing_folder_or_without_its_driver_is_one_line(cli, monkeypatch):
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", "sqlite:////nonexistent/dir/x.db")
    missing = cli("db", "upgrade")
    assert missing.code == 2 and "does not exist" in one_line(missing)

    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/x")
    driver = cli("db", "upgrade")
    assert driver.code == 2 and "pip install 'dripcourse[postgres]'" in one_line(driver)


def test_a_command_on_a_database_not_made_yet_leaves_no_file_behind(cli, tmp_path, monkeypatch):
    folder = tmp_path / "fresh"
    folder.mkdir()
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", f"sqlite:///{folder / 'typo.db'}")
    for args in (("status",), ("queue",), ("subscribers", "list"), ("tick",)):
        result = cli(*args)
        assert result.code == 2 and "run `dripcourse db upgrade`" in one_line(result)
    assert list(folder.iterdir()) == []


def test_a_call_to_action_without_its_optional_text_renders(cli, courses_dir):
    toml = courses_dir / "runners" / "course.toml"
    lines = toml.read_text().splitlines()
    start = lines.index("[call_to_action]")
    text_line = next(i for i in range(start, len(lines)) if lines[i].startswith("text = "))
    toml.write_text("\n".join(lines[:text_line] + lines[text_line + 1 :]) + "\n")
    checked = cli("courses", "check")
    assert checked.code == 0, checked.err
