"""A cohort course as its author and its operator meet it on the command line: `courses check`
refusing what cannot be a cohort, `courses calendar` for a late joiner in each mode, and people
subscribed and imported with `tick --now` moving through March 2027 (Toronto's DST change on the
14th) and a real SMTP server receiving each lesson."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dripcourse.devtools.smtpserver import CapturingSMTPServer

CliRunner = Callable[..., Any]


def make_cohort(courses_dir: Path, *lines: str) -> Path:
    """The example course with `lines` at the top of its [schedule]; the course.toml's path."""
    toml = courses_dir / "runners" / "course.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("[schedule]\n", "[schedule]\n" + "".join(f"{x}\n" for x in lines)))
    return toml


def line_of(file: Path, start: str) -> str:
    lines = file.read_text(encoding="utf-8").splitlines()
    return f"{file}:{next(n for n, line in enumerate(lines, 1) if line.startswith(start))}"


@pytest.mark.parametrize(
    ("lines", "wrong", "message"),
    [
        (['starts_on = "2027-03-01"'], "starts_on", "schedule.starts_on must be a date like"),
        (
            ["starts_on = 2027-03-01T08:00:00"],
            "starts_on",
            "schedule.starts_on must be a date without a time (starts_on = 2027-03-01)",
        ),
        (["starts_on = 20270301"], "starts_on", "schedule.starts_on must be a date like"),
        (
            ["starts_on = 2027-03-01", 'late_joiners = "catchup"'],
            "late_joiners",
            'schedule.late_joiners: must be one of "catch_up", "join_in_progress", got \'catchup\'',
        ),
        (
            ['late_joiners = "catch_up"'],
            "late_joiners",
            "schedule.late_joiners only applies to a cohort course: add starts_on",
        ),
        (
            ["starts_on = 2027-03-01", "late_joiners = true"],
            "late_joiners",
            "schedule.late_joiners must be text",
        ),
        (
            ["starts_on = 2027-03-01", "allow_early = true"],
            "allow_early",
            "schedule.allow_early cannot be used in a cohort course (starts_on)",
        ),
    ],
)
def test_courses_check_refuses_what_cannot_be_a_cohort(
    cli: CliRunner, courses_dir: Path, lines: list[str], wrong: str, message: str
) -> None:
    toml = make_cohort(courses_dir, *lines)

    result = cli("courses", "check")

    assert result.code == 1
    assert f"{line_of(toml, wrong)}: {message}" in result.err, result.err
    assert "Traceback" not in result.err


def test_a_cohort_that_started_in_the_past_is_still_a_course(cli: CliRunner, courses_dir: Path):
    make_cohort(courses_dir, "starts_on = 2020-01-06", 'late_joiners = "join_in_progress"')

    assert cli("courses", "check").code == 0


def test_the_calendar_of_a_late_joiner_in_each_mode(cli: CliRunner, courses_dir: Path) -> None:
    make_cohort(courses_dir, "starts_on = 2027-03-01")
    joining = ("--start", "2027-03-17T15:00Z", "--timezone", "America/Toronto")

    catch_up = cli("courses", "calendar", "runners", *joining)
    in_progress = cli(
        "courses", "calendar", "runners", *joining, "--late-joiners", "join_in_progress"
    )

    assert catch_up.code == 0, catch_up.err
    lines = catch_up.out.splitlines()
    assert "a cohort course starting Mon 01 Mar 2027; late joiners catch up" in lines[2]
    assert "2027-03-18 08:00 America/Toronto" in lines[3]
    assert "behind the cohort, which had it Mon 01 Mar" in lines[3]
    assert "2027-03-20 08:00" in lines[5] and "which had it Mon 15 Mar" in lines[5]
    assert lines[6].split()[:4] == ["4", "knees", "2027-03-22", "08:00"]  # on the cohort's date
    assert "behind" not in lines[6]

    assert in_progress.code == 0, in_progress.err
    lines = in_progress.out.splitlines()
    assert "late joiners start at the cohort's current lesson" in lines[2]
    assert "skipped: before you joined (the cohort had it Mon 01 Mar)" in lines[3]
    assert "skipped: before you joined (the cohort had it Mon 08 Mar)" in lines[4]
    assert lines[5].split()[:4] == ["3", "calves-achilles", "2027-03-18", "08:00"]
    assert lines[6].split()[:4] == ["4", "knees", "2027-03-22", "08:00"]


def test_the_calendar_refuses_a_mode_for_a_course_without_a_cohort(cli: CliRunner) -> None:
    result = cli("courses", "calendar", "runners", "--late-joiners", "catch_up")

    assert result.code == 2
    assert result.err.strip().endswith("there are no late joiners")
    assert len(result.err.strip().splitlines()) == 1

    unknown = cli("courses", "calendar", "runners", "--late-joiners", "later")
    assert unknown.code == 2 and "'later' is not one of" in unknown.err


def test_subscribed_and_imported_people_follow_the_cohort_through_tick(
    cli: CliRunner, courses_dir: Path, smtpd: CapturingSMTPServer, tmp_path: Path
) -> None:
    make_cohort(courses_dir, "starts_on = 2027-03-01", 'late_joiners = "join_in_progress"')
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync", "--now", "2027-02-01T12:00Z").code == 0
    early = cli(
        "subscribe",
        "ada@example.com",
        "--course",
        "runners",
        "--timezone",
        "America/Toronto",
        "--confirmed",
        "--now",
        "2027-02-10T15:00Z",
    )
    assert "their first lesson is due 2027-03-01 08:00 America/Toronto" in early.out, early
    people = tmp_path / "people.csv"
    people.write_text("email,name,timezone\nbo@example.com,Bo,America/Toronto\n")
    imported = cli(
        "subscribers",
        "import",
        str(people),
        "--course",
        "runners",
        "--confirmed",
        "--now",
        "2027-03-17T15:00Z",
    )
    assert imported.code == 0, imported.err

    for day in ("2027-03-01", "2027-03-08", "2027-03-15", "2027-03-18", "2027-03-22"):
        ticked = cli("tick", "--now", f"{day}T13:00Z")
        assert ticked.code == 0, ticked.err

    def got(email: str) -> list[str]:
        return [
            str(m.message["Subject"]).split(":")[0]
            for m in smtpd.messages
            if m.rcpt_tos == (email,)
        ]

    assert got("ada@example.com") == ["Lesson 1", "Lesson 2", "Lesson 3", "Lesson 4"]
    # Imported on the 17th: the cohort's current lesson (3) the next morning, then lesson 4 with it.
    assert got("bo@example.com") == ["Lesson 3", "Lesson 4"]
    shown = cli("timeline", "bo@example.com", "--now", "2027-03-22T13:00Z")
    assert shown.code == 0, shown.err
    skipped = [line for line in shown.out.splitlines() if line.strip().startswith("skipped")]
    assert [line.split()[1:3] for line in skipped] == [["1", "feet"], ["2", "ankles"]]
    assert all("before you joined" in line for line in skipped)
    owed = [line for line in shown.out.splitlines() if line.strip().startswith("owed")]
    assert owed[0].split()[1:5] == ["5", "hips", "2027-03-29", "08:00"]
