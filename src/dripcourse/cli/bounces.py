"""`dripcourse bounces ...`: bounces and complaints read from the bounce mailbox."""

from __future__ import annotations

from pathlib import Path

import click

from dripcourse.app import bounces
from dripcourse.cli.main import App, now_option, pass_app


@click.group("bounces")
def bounces_group() -> None:
    """Read bounces and complaints sent back to the VERP addresses."""


@bounces_group.command("process")
@click.argument("path", type=click.Path(path_type=Path))
@now_option
@pass_app
def process(app: App, path: Path, now: str | None) -> None:
    """Read the Maildir folder or mbox file PATH: hard bounces and complaints suppress the address,
    soft bounces count toward DRIPCOURSE_SOFT_BOUNCE_LIMIT. Safe to run again on the same mail."""
    app.at(now)
    report = bounces.process_mailbox(app.database(), path, app.clock.now(), app.settings)
    click.echo(report.summary())


def register(cli: click.Group) -> None:
    cli.add_command(bounces_group)
