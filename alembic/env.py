"""Alembic environment: runs the migrations on the connection `dripcourse db upgrade` hands over,
or, from the source tree, on `DRIPCOURSE_DATABASE_URL`."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from dripcourse.store.db import make_engine
from dripcourse.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode copies and drops tables; with foreign keys on, dropping a parent table would
        # cascade into its children. Off for the migration, checked afterwards.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.connection.driver_connection.execute(
            "PRAGMA foreign_key_check"
        ).fetchall()
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
        if broken:
            raise RuntimeError(f"the migration left rows that break foreign keys: {broken[:5]}")


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = os.environ.get("DRIPCOURSE_DATABASE_URL", "sqlite:///dripcourse.db")
    engine = make_engine(url)
    with engine.connect() as connection:
        run_on(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_online()
