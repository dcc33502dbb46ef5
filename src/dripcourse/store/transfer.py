"""Moving an installation to another database: everything in the current one (SQLite, as a rule)
is copied to an empty PostgreSQL one, so that several sending workers on several machines can share it.

The target gets the same Alembic migrations first, then each table in dependency order (parents
before children, so foreign keys hold at every step) with Core bulk INSERTs in chunks, ids
included. PostgreSQL's id sequences are then moved past the copied ids, or the next sign-up would
collide with row 1. The copy is one transaction on the target: it lands whole or not at all. The
source is read in one read transaction, a consistent snapshot even while workers keep sending
(though they should be stopped, or what they do after the snapshot stays behind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, insert, select, text
from sqlalchemy.exc import OperationalError

from dripcourse.errors import BadInput
from dripcourse.store import migrations, tallies
from dripcourse.store.db import Database
from dripcourse.store.models import Base

CHUNK = 5_000
"""Rows per INSERT: large enough to be fast, small enough to keep memory flat."""


@dataclass(frozen=True, slots=True)
class Copied:
    table: str
    rows: int


def migrate_to(
    source: Database, target: Database, on_table: Callable[[Copied], None] | None = None
) -> list[Copied]:
    """Copy every row of `source` into the empty `target`; returns the count of each table."""
    if migrations.current_revision(source) != migrations.head_revision(source):
        raise BadInput(f"the database {source.url} is not up to date; run `dripcourse db upgrade`")
    try:
        migrations.upgrade(target)
    except OperationalError as exc:
        raise BadInput(f"cannot open the target database {target.url}: {exc.orig}") from None
    tables = Base.metadata.sorted_tables
    copied: list[Copied] = []
    with source.engine.connect() as reading, target.engine.begin() as writing:
        filled = [table.name for table in tables if _count(writing, table)]
        if filled:
            raise BadInput(
                f"the target database is not empty ({', '.join(filled)} hold rows); "
                "migrate-to only fills an empty database"
            )
        # The counts the triggers keep are copied as they are: the triggers would count every
        # copied row a second time, so they are off while rows land (in this one transaction).
        tallies.uninstall(writing)
        for table in tables:
            done = Copied(table.name, _copy(reading, writing, table))
            copied.append(done)
            if on_table is not None:
                on_table(done)
        if writing.dialect.name == "postgresql":
            for table in tables:
                _reset_sequence(writing, table)
        tallies.install(writing)
    return copied


def _count(connection: Connection, table: Table) -> int:
    return connection.scalar(select(func.count()).select_from(table)) or 0


def _copy(reading: Connection, writing: Connection, table: Table) -> int:
    rows = 0
    # The model's column types convert on the way (UTC instants, JSON), so both sides agree.
    result = reading.execution_options(yield_per=CHUNK).execute(select(table))
    for chunk in result.mappings().partitions(CHUNK):
        writing.execute(insert(table), [dict(row) for row in chunk])
        rows += len(chunk)
    return rows


def _reset_sequence(writing: Connection, table: Table) -> None:
    """Move a serial id's sequence past the largest copied id (or leave it at 1 if none)."""
    if "id" not in table.c or not table.c.id.autoincrement:
        return
    writing.execute(
        text(
            "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table.name}), 1), "
            f"(SELECT MAX(id) FROM {table.name}) IS NOT NULL)"
        ),
        {"table": table.name},
    )
