"""`dripcourse db ...`: the schema."""

from __future__ import annotations

from pathlib import Path

import click

from dripcourse.cli.main import App, pass_app
from dripcourse.errors import BadInput
from dripcourse.store import backup, migrations, transfer
from dripcourse.store.db import Database


@click.group("db")
def db_group() -> None:
    """Create and migrate the database."""


@db_group.command("upgrade")
@click.option("--revision", default="head", help="Migrate to this revision.")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Create the schema, or bring it up to date. Safe to run at every deploy."""
    database = app.database(require_schema=False)
    if revision != "head" and not migrations.is_known_revision(database, revision):
        head = migrations.head_revision(database)
        raise BadInput(f"unknown revision {revision!r}; this version knows up to {head} (head)")
    before = migrations.current_revision(database)
    migrations.upgrade(database, revision)
    after = migrations.current_revision(database)
    if before == after:
        click.echo(f"database {database.url} is up to date (revision {after})")
    else:
        click.echo(f"database {database.url} migrated from {before or 'empty'} to {after}")


@db_group.command("migrate-to")
@click.argument("url")
@pass_app
def migrate_to(app: App, url: str) -> None:
    """Copy everything to the empty database at URL (e.g. postgresql+psycopg://host/db).

    Stop `dripcourse run` first; afterwards point DRIPCOURSE_DATABASE_URL at URL."""
    source = app.database()
    target = Database(url)
    try:
        copied = transfer.migrate_to(
            source, target, lambda done: click.echo(f"{done.table}: {done.rows} row(s)")
        )
    finally:
        target.dispose()
    total = sum(done.rows for done in copied)
    click.echo(f"copied {total} row(s) in {len(copied)} tables to {target.engine.url}")


def register(cli: click.Group) -> None:
    cli.add_command(db_group)


# --- Backup and restore (SQLite) -----------------------------------------------------------------
# Kept in one block at the end of the module; the operations live in `dripcourse.store.backup`.


@db_group.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@pass_app
def backup_command(app: App, path: Path, force: bool) -> None:
    """Write a consistent copy of the SQLite database to PATH, safe while others write."""
    result = backup.backup(app.database(require_schema=False), path, force=force)
    click.echo(
        f"backed up {app.settings.database_url} to {result.path} "
        f"({result.size:,} bytes, revision {result.revision})"
    )


@db_group.command("restore")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace the configured database if it exists.")
@pass_app
def restore_command(app: App, path: Path, force: bool) -> None:
    """Copy the backup PATH over the configured SQLite database, then migrate it. Stop the workers
    and the web server first: they would go on from the old data."""
    before, after = backup.restore(app.database(require_schema=False), path, force=force)
    click.echo(
        f"restored {path} (revision {before}) to {app.settings.database_url}"
        + (f"; migrated to {after}" if after != before else "")
    )
