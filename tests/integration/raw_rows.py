"""Rows written in plain SQL, for the upgrade tests: an older revision's schema has no models to
write through, so its rows go in under the table and column names that revision had."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text


def insert(connection: Connection, table: str, **values: Any) -> None:
    """One row of `table`, a column per keyword (names quoted: some are SQL keywords)."""
    columns = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join(f":{name}" for name in values)
    connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values)
