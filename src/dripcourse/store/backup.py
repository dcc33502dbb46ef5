"""Backing up an SQLite database while it is in use, and restoring a backup.

Both go through SQLite's online backup API (`sqlite3.Connection.backup`), never a file copy: a
backup is a consistent snapshot even while workers write (in WAL mode the copy reads one snapshot
and nobody waits), and a restore writes through SQLite's own locking, so a stale `-wal` file next to
the target cannot mix old pages into the restored database. A backup is written beside its target
and renamed into place, and is left in rollback-journal mode: one self-contained file. Backups and
restored databases are 0600 like the database (`db.make_private`): they hold the same data.

PostgreSQL has its own tools (`pg_dump`, `pg_restore`); these commands refuse it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from dripcourse.errors import BadInput
from dripcourse.store import migrations
from dripcourse.store.db import Database, make_private, sqlite_path

# Tables a dripcourse database has had since its first migration.
_OUR_TABLES = frozenset({"alembic_version", "courses", "subscribers", "enrollments", "deliveries"})


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    revision: str | None


def backup(database: Database, target: Path, *, force: bool = False) -> BackupResult:
    """Write a consistent copy of the configured SQLite database to `target`."""
    source = sqlite_file(database)
    if not source.is_file():
        raise BadInput(f"there is no database at {source} to back up")
    if target.is_dir() or not target.parent.is_dir():
        raise BadInput(f"cannot write a backup to {target}: not a file in an existing folder")
    if target.exists() and not force:
        raise BadInput(f"{target} exists; add --force to replace it")
    if target.exists() and target.resolve() == source.resolve():
        raise BadInput("the backup cannot replace the database itself")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    make_private(partial)  # os.replace keeps the mode
    try:
        with closing(sqlite3.connect(source)) as reader, closing(sqlite3.connect(partial)) as copy:
            reader.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BadInput(f"the copy of {source} failed its integrity check")
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BadInput(f"cannot back up {source}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return BackupResult(target, target.stat().st_size, revision_of(target))


def restore(database: Database, source: Path, *, force: bool = False) -> tuple[str, str | None]:
    """Copy the backup `source` over the configured SQLite database, then migrate it to the newest
    schema. Returns the backup's revision and the revision after migrating."""
    target = sqlite_file(database)
    revision = revision_of(source)
    if revision is None or not migrations.is_known_revision(database, revision):
        raise BadInput(
            f"{source} is at schema revision {revision or 'none'}, which this version of "
            "dripcourse does not know"
        )
    if target.exists() and not force:
        raise BadInput(f"the database {target} exists; add --force to replace it with {source}")
    if target.exists() and target.resolve() == source.resolve():
        raise BadInput("a database cannot be restored over itself")
    if target.parent.is_dir():  # else sqlite3 says why it cannot open the target
        make_private(target)
    try:
        with (
            closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as backup,
            closing(sqlite3.connect(target)) as live,
        ):
            backup.backup(live)
    except sqlite3.Error as exc:
        raise BadInput(f"cannot restore {source} to {target}: {exc}") from None
    migrations.upgrade(database)
    return revision, migrations.current_revision(database)


def revision_of(path: Path) -> str | None:
    """The schema revision of the dripcourse database in the file `path`; `BadInput` if it is not
    one."""
    if not path.is_file():
        raise BadInput(f"no backup file at {path}")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as file:
            tables = {
                name
                for (name,) in file.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not _OUR_TABLES.issubset(tables):
                raise BadInput(f"{path} is an SQLite database, but not a dripcourse database")
            row = file.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{path} is not an SQLite database ({exc})") from None
    return None if row is None else str(row[0])


def sqlite_file(database: Database) -> Path:
    path = sqlite_path(database.url)
    if path is None:
        raise BadInput(
            f"backup and restore work on an SQLite file; {database.dialect} has its own "
            "tools (pg_dump and pg_restore for PostgreSQL)"
        )
    return path
