"""`dripcourse report SLUG` as an operator runs it: a database made by `db upgrade`, people enrolled
with `subscribe`, two lessons sent with `tick --now` to a real SMTP server that refuses one address,
then the report in each format, its numbers equal to what the server received."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

FIELDS = ["lesson", "subject", "sent", "failed", "bounced", "unsubscribed", "clicked"]
PEOPLE = ["ada@example.com", "bruno@example.com", "chiara@example.com", "gone@example.com"]
FIRST, SECOND = "Lesson 1: Feet first", "Lesson 2: Ankles that bend and balance"


@pytest.fixture
def two_lessons_sent(cli, smtpd):
    """Four people; gone@ has no mailbox (550); chiara leaves after lesson 1."""
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    for email in PEOPLE:
        result = cli(
            "subscribe", email, "--course", "runners", "--timezone", "America/Toronto",
            "--confirmed", "--now", "2026-03-02T15:00:00Z",
        )  # fmt: skip
        assert result.code == 0, result.err
    smtpd.fail_recipient("gone@example.com")
    assert cli("tick", "--now", "2026-03-03T13:00:00Z").code == 0
    result = cli("unsubscribe", "chiara@example.com", "--now", "2026-03-04T09:00:00Z")
    assert result.code == 0, result.err
    assert cli("tick", "--now", "2026-03-10T12:00:00Z").code == 0
    return Counter(str(message.message["Subject"]) for message in smtpd.messages)


def test_json_is_a_list_of_the_seven_fields_and_matches_the_server(cli, two_lessons_sent):
    result = cli("report", "runners", "--format", "json")

    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [list(row) for row in rows] == [FIELDS] * 10
    assert rows[0] == {
        "lesson": 1,
        "subject": FIRST,
        "sent": two_lessons_sent[FIRST],
        "failed": 1,
        "bounced": 0,
        "unsubscribed": 1,
        "clicked": None,
    }
    assert rows[1] == {
        "lesson": 2,
        "subject": SECOND,
        "sent": two_lessons_sent[SECOND],
        "failed": 0,
        "bounced": 0,
        "unsubscribed": 0,
        "clicked": None,
    }
    assert (two_lessons_sent[FIRST], two_lessons_sent[SECOND]) == (3, 2)
    assert [row["lesson"] for row in rows] == list(range(1, 11))
    assert all(row["sent"] == 0 for row in rows[2:])


def test_csv_has_a_header_row_and_one_row_per_lesson(cli, two_lessons_sent):
    result = cli("report", "runners", "--format", "csv")

    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(result.out)))
    assert rows[0] == FIELDS
    assert rows[1] == ["1", FIRST, "3", "1", "0", "1", ""]
    assert rows[2] == ["2", SECOND, "2", "0", "0", "0", ""]
    assert len(rows) == 11


def test_the_table_is_the_default_and_reads_like_one(cli, two_lessons_sent):
    result = cli("report", "runners")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "LESSON", "SUBJECT", "SENT", "FAILED", "BOUNCED", "UNSUBSCRIBED", "CLICKED",
    ]  # fmt: skip
    assert lines[1].split() == ["1", *FIRST.split(), "3", "1", "0", "1", "-"]
    assert lines[2].split() == ["2", *SECOND.split(), "2", "0", "0", "0", "-"]
    assert len(lines) == 11
    # Numbers are right-aligned under their headings.
    sent_ends = lines[0].index("SENT") + len("SENT")
    assert lines[1][sent_ends - 1] == "3" and lines[1][sent_ends] == " "
    assert all(len(line) == len(lines[0]) for line in lines[1:])


def test_clicks_show_as_numbers_when_the_course_tracks_them(cli, smtpd, courses_dir):
    toml = courses_dir / "runners" / "course.toml"
    toml.write_text(toml.read_text() + "\n[tracking]\nclicks = true\n")
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0

    result = cli("report", "runners", "--format", "json")

    assert result.code == 0, result.err
    assert {row["clicked"] for row in json.loads(result.out)} == {0}


@pytest.mark.parametrize("output", ["table", "csv", "json"])
def test_an_unknown_course_exits_2_with_one_line(cli, output):
    assert cli("db", "upgrade").code == 0
    result = cli("report", "nope", "--format", output)

    assert result.code == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("dripcourse: error:") and "nope" in result.err


def test_an_unknown_format_exits_2_with_one_line(cli):
    result = cli("report", "runners", "--format", "xml")

    assert result.code == 2
    assert len(result.err.splitlines()) == 1 and "xml" in result.err
