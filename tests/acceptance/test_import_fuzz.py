"""Fuzzing `dripcourse subscribers import`: any CSV file ends with exit status 0, 1 or 2 and never a
traceback; a refused file (2) writes nothing; otherwise every bad row is reported as
`<path>:<line>: <reason>` with a real line number, and every data record is accounted for."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dripcourse.config import Settings

COLUMNS = ["email", "name", "timezone", "Email", " TIMEZONE ", "notes", "course", ""]
EMAILS = [
    "ann@example.com",
    "Bob@Example.COM",
    "bob@example.com",
    "  carol@example.org ",
    "dave+tag@sub.example.net",
    "émile@exemple.fr",
    "用户@例子.广告",
    "not-an-email",
    "@example.com",
    "two@@example.com",
    "",
    "a@b",
    "x" * 400 + "@example.com",
    "tab\t@example.com",
]
ZONES = ["Europe/Berlin", "America/Toronto", "UTC", "Mars/Olympus", "", " Asia/Tokyo ", "utc"]
wild = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20
)  # unicode, control characters, commas, quotes, newlines
cell = st.one_of(
    st.sampled_from(EMAILS),
    st.sampled_from(ZONES),
    wild,
    st.sampled_from(['"', '""', ",", "\n", "\r\n", "\r", "a,b", '"quoted, with comma"', "\ufeff"]),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    header = draw(st.lists(st.sampled_from(COLUMNS), max_size=5))
    if draw(st.integers(0, 4)) > 0 and "email" not in header:
        header.insert(draw(st.integers(0, len(header))), "email")
    rows: list[list[str]] = []
    for _ in range(draw(st.integers(0, 8))):
        width = draw(st.sampled_from([len(header), len(header), len(header) + 1, 1, 0]))
        row = []
        for column in range(width):
            name = header[column].strip().lower() if column < len(header) else ""
            if name == "email" and draw(st.booleans()):
                row.append(draw(st.sampled_from(EMAILS)))
            elif name == "timezone" and draw(st.booleans()):
                row.append(draw(st.sampled_from(ZONES)))
            else:
                row.append(draw(cell))
        rows.append(row)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        out = io.StringIO(newline="")
        writer = csv.writer(
            out,
            lineterminator=newline,
            quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        )
        writer.writerow(header)
        for row in rows:
            if draw(st.integers(0, 5)) == 0:
                out.write(newline)  # an empty line
            writer.writerow(row)
        text = out.getvalue()
    else:  # naive joining: unbalanced quotes, stray commas and line breaks inside cells
        lines = [",".join(header)] + [",".join(row) for row in rows]
        text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8", "surrogatepass")


def count_rows(settings: Settings) -> tuple[int, int]:
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        subscribers = connection.execute("SELECT count(*) FROM subscribers").fetchone()[0]
        enrollments = connection.execute("SELECT count(*) FROM enrollments").fetchone()[0]
    return int(subscribers), int(enrollments)


def expected_records(text: str) -> int:
    """Data records as a CSV reader sees them (blank lines are no records)."""
    return sum(1 for _ in csv.DictReader(io.StringIO(text, newline="")))


SUMMARY = re.compile(r"^imported (\d+), already enrolled (\d+), skipped (\d+)$", re.MULTILINE)


@pytest.fixture
def prepared(cli):
    """The CLI with the schema made and the runners course synced: once per test function, not
    per example (hypothesis runs all examples inside one call of the test)."""
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    return cli


@hsettings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.data())
def test_import_of_any_csv(
    content: st.DataObject, prepared, settings: Settings, tmp_path: Path
) -> None:
    data = content.draw(csv_files())
    path = tmp_path / f"import-{uuid.uuid4().hex}.csv"
    path.write_bytes(data)

    before = count_rows(settings)
    result = prepared("subscribers", "import", str(path), "--course", "runners", "--confirmed")
    assert result.code in (0, 1, 2), result
    assert "Traceback" not in result.err, result.err
    event(f"exit {result.code}")

    if result.code == 2:
        assert count_rows(settings) == before
        assert result.err.startswith("dripcourse: error:"), result.err
        return

    text = data.decode("utf-8-sig")
    physical_lines = len(io.StringIO(text, newline="").readlines())
    reported = [line for line in result.err.splitlines() if line.startswith(f"{path}:")]
    for line in reported:
        match = re.fullmatch(rf"{re.escape(str(path))}:(\d+): (.+)", line)
        assert match, line
        assert 1 <= int(match.group(1)) <= physical_lines, (line, physical_lines, text)
    summary = SUMMARY.search(result.out)
    assert summary, result.out
    imported, already, skipped = (int(n) for n in summary.groups())
    assert skipped == len(reported), (result.err, summary.group(0))
    assert imported + already + skipped == expected_records(text), (text, result)
    assert result.code == (1 if skipped else 0)
    assert count_rows(settings)[1] - before[1] == imported
