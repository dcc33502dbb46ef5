"""Custom fields and audiences as an operator meets them on the command line: a CSV import with a
column per field, the lesson that reads them arriving through a real SMTP server, a timeline and a
calendar that show the lesson someone skips, and hostile values refused with exit status 2.

The course is `tests/fieldcourse.py`'s: lesson 2 prints `level` and `club`, lesson 4 is for
returning runners. Toronto springs forward on 14 March 2027, between lesson 3 and lesson 4."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from fieldcourse import field_course, set_front_matter

from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer

IMPORTED_AT = "2027-02-22T15:00:00Z"  # a Monday, 10:00 in Toronto
TUESDAYS = ["2027-02-23T13:00:00Z", "2027-03-02T13:00:00Z", "2027-03-09T13:00:00Z"]
AFTER_THE_CHANGE = "2027-03-16T12:00:00Z"  # 08:00 in Toronto, summer time
PEOPLE_CSV = """\
email,name,timezone,level,club
ann@example.com,Ann Lee,America/Toronto,returning,<b>Tom & Jerry's</b>
bob@example.com,Bob Stone,America/Toronto,,
cat@example.com,Cat Moss,America/Toronto,expert,
dee@example.com,Dee Park,America/Toronto,beginner,"Two
lines"
"""


@pytest.fixture
def courses_dir(tmp_path: Path) -> Path:
    return field_course(tmp_path / "emails")


@pytest.fixture
def ready(cli) -> None:
    assert cli("db", "upgrade").code == 0
    synced = cli("courses", "sync")
    assert synced.code == 0, synced.err


def imported(cli, tmp_path: Path, text: str = PEOPLE_CSV):
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return cli(
        "subscribers",
        "import",
        str(path),
        "--course",
        "runners",
        "--confirmed",
        "--now",
        IMPORTED_AT,
    )


def rows(settings: Settings, table: str) -> int:
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_an_import_with_fields_and_the_lesson_that_reads_them(
    cli, ready, tmp_path: Path, smtpd: CapturingSMTPServer
) -> None:
    done = imported(cli, tmp_path)
    assert done.code == 1  # two rows were skipped
    assert "imported 2, already enrolled 0, skipped 2" in done.out
    assert "people.csv:4: level must be one of beginner, returning; not 'expert'" in done.err
    assert "people.csv:5: club may not contain line breaks" in done.err
    for at in TUESDAYS[:2]:
        assert cli("tick", "--now", at).code == 0
    [ann] = [m.message for m in smtpd.messages if "ann@example.com" in m.rcpt_tos][1:]
    [bob] = [m.message for m in smtpd.messages if "bob@example.com" in m.rcpt_tos][1:]
    assert str(ann["Subject"]) == "Lesson 2: Ankles for returning runners"
    assert str(bob["Subject"]) == "Lesson 2: Ankles for beginner runners"
    text = " ".join(ann.get_body(("plain",)).get_content().split())
    html = " ".join(ann.get_body(("html",)).get_content().split())
    assert "Say hello to everyone at <b>Tom & Jerry's</b>." in text
    assert "Say hello to everyone at &lt;b&gt;Tom &amp; Jerry's&lt;/b&gt;." in html

    # The export writes one column per field: what each person gave, not the defaults.
    exported = list(csv.DictReader(io.StringIO(cli("subscribers", "export").out)))
    assert [(r["email"], r["level"], r["club"]) for r in exported] == [
        ("ann@example.com", "returning", "<b>Tom & Jerry's</b>"),
        ("bob@example.com", "", ""),
    ]


def test_a_timeline_and_a_calendar_show_the_lesson_someone_skips(
    cli, ready, tmp_path: Path, smtpd: CapturingSMTPServer
) -> None:
    assert imported(cli, tmp_path, PEOPLE_CSV.rsplit("cat@", 1)[0]).code == 0
    for at in TUESDAYS:
        assert cli("tick", "--now", at).code == 0
    shown = cli("timeline", "bob@example.com", "--now", "2027-03-10T12:00:00Z")
    assert shown.code == 0, shown.err
    lines = [" ".join(line.split()) for line in shown.out.splitlines()]
    at = lines.index("skipped 4 knees (skipped: for level returning)")
    # Lesson 5 takes lesson 4's day, after the change to summer time: 08:00 is now 12:00 UTC.
    assert lines[at - 1].startswith("sent 3 calves-achilles 2027-03-09 08:00 America/Toronto")
    assert lines[at + 1] == ("owed 5 hips 2027-03-16 08:00 America/Toronto (2027-03-16 12:00 UTC)")
    # Ann is a returning runner: lesson 4 is hers, on that day.
    ann = [" ".join(line.split()) for line in cli("timeline", "ann@example.com").out.splitlines()]
    assert "owed 4 knees 2027-03-16 08:00 America/Toronto (2027-03-16 12:00 UTC)" in ann
    assert not any(line.startswith("skipped") for line in ann)

    # The dispatcher agrees with both.
    sent = cli("tick", "--now", AFTER_THE_CHANGE).out
    assert "ann@example.com runners lesson 4 (knees)" in " ".join(sent.split())
    assert "bob@example.com runners lesson 5 (hips)" in " ".join(sent.split())

    # The calendar of a course, for a value of the field.
    for level, skipped in (("beginner", True), ("returning", False)):
        calendar = cli(
            "courses", "calendar", "runners", "--start", IMPORTED_AT, "--field", f"level={level}"
        )
        assert calendar.code == 0, calendar.err
        out = [" ".join(line.split()) for line in calendar.out.splitlines()]
        assert f"for level={level}, club=(none)" in out
        assert ("4 knees (skipped: for level returning)" in out) is skipped
        fifth = "5 hips 2027-03-16 08:00" if skipped else "5 hips 2027-03-23 08:00"
        assert any(line.startswith(fifth) for line in out)


def test_an_unknown_column_is_named_and_nothing_is_written(
    cli, ready, tmp_path: Path, settings: Settings
) -> None:
    done = imported(cli, tmp_path, "email,level,shoe_size\nann@example.com,returning,42\n")
    assert done.code == 2
    assert done.err.strip().splitlines()[-1] == (
        "dripcourse: error: the CSV has column(s) 'shoe_size' that 'runners' does not know (its "
        "columns: email, name, timezone, level, club); nothing was imported"
    )
    assert rows(settings, "subscribers") == rows(settings, "enrollments") == 0


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("level=expert", "level must be one of beginner, returning; not 'expert'"),
        ("shoe_size=42", "unknown field 'shoe_size' (this course's fields: level, club)"),
        ("club=a\nb", "club may not contain line breaks or control characters"),
        ("club=\x1b[31mred", "club may not contain line breaks or control characters"),
        ("club=" + "x" * 201, "club may be at most 200 characters long"),
        ("level", "--field takes NAME=VALUE, not 'level'"),
    ],
)
def test_a_hostile_field_on_the_command_line_is_one_line_and_exit_2(
    cli, ready, settings: Settings, field: str, says: str
) -> None:
    done = cli("subscribe", "eve@example.com", "--course", "runners", "--field", field)
    assert done.code == 2
    assert done.err == f"dripcourse: error: {says}\n"
    assert rows(settings, "subscribers") == 0


def test_subscribe_with_fields_and_courses_check_of_audiences(
    cli, ready, courses_dir: Path
) -> None:
    done = cli(
        "subscribe",
        "eve@example.com",
        "--course",
        "runners",
        "--confirmed",
        "--field",
        "level=returning",
        "--field",
        "club=Riverside  Runners ",
        "--now",
        IMPORTED_AT,
    )
    assert done.code == 0, done.err
    exported = list(csv.DictReader(io.StringIO(cli("subscribers", "export").out)))
    assert (exported[0]["level"], exported[0]["club"]) == ("returning", "Riverside Runners")

    lesson = courses_dir / "runners" / "05-hips.md"
    for audience, says in (
        ('{ size = ["s"] }', "audience names an unknown field 'size'"),
        ('{ level = ["expert"] }', "audience.level: 'expert' is not one of beginner, returning"),
        ('{ club = ["A"] }', "audience.club: a text field cannot choose an audience"),
    ):
        original = lesson.read_text(encoding="utf-8")
        set_front_matter(lesson, f"audience = {audience}")
        checked = cli("courses", "check")
        assert checked.code == 1
        assert f"05-hips.md:2: {says}" in checked.err
        lesson.write_text(original, encoding="utf-8")
    assert cli("courses", "check").code == 0
