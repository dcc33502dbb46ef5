"""Runs the Alembic migrations shipped with the package, so `dripcourse db upgrade` works from an
installed wheel as well as from the source tree."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from dripcourse.store.db import Database


def script_location() -> Path:
    packaged = Path(str(files("dripcourse"))) / "alembic"
    if packaged.is_dir():
        return packaged
    # Editable install or source checkout: the top-level alembic/ folder beside src/.
    return Path(__file__).resolve().parents[3] / "alembic"


def _config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    config = _config(database)
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
        if connection.dialect.name == "sqlite":
            # alembic/env.py turns SQLite's foreign keys off for the migration and on again, but
            # SQLite ignores that pragma inside a transaction, which an upgrade with nothing to do
            # leaves open: on again here, after the commit, before the pool hands the
            # connection to anyone else (a restore and the demo go on in this process).
            # On the driver's connection: SQLAlchemy's would begin a transaction first.
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=ON")


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(_config(database)).get_current_head()


def is_known_revision(database: Database, revision: str) -> bool:
    """Is `revision` one of the migrations shipped with this version?"""
    if not revision.strip():
        return False  # Alembic asserts on an empty name
    try:
        return ScriptDirectory.from_config(_config(database)).get_revision(revision) is not None
    except (RevisionError, CommandError):
        return False
