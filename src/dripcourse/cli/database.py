"""`dripcourse db ...`: the schema."""

from __future__ import annotations

import click

from dripcourse import migrations
from dripcourse.cli.main import App, pass_app


@click.group("db")
def db_group() -> None:
    """Create and migrate the database."""


@db_group.command("upgrade")
@click.option("--revision", default="head", help="Migrate to this revision.")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Create the schema, or bring it up to date. Safe to run at every deploy."""
    database = app.database(require_schema=False)
    before = migrations.current_revision(database)
    migrations.upgrade(database, revision)
    after = migrations.current_revision(database)
    if before == after:
        click.echo(f"database {database.url} is up to date (revision {after})")
    else:
        click.echo(f"database {database.url} migrated from {before or 'empty'} to {after}")


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
