"""`dripcourse demo`: the runners course dripped to three people over simulated weeks."""

from __future__ import annotations

from pathlib import Path

import click

from dripcourse.cli.main import App, pass_app
from dripcourse.devtools.demo import run_demo


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("dripcourse-demo"),
    help="Where the demo keeps its database and mail.",
)
@click.option("--weeks", default=11, type=click.IntRange(1, 52), help="How long to simulate.")
@pass_app
def demo(app: App, folder: Path, weeks: int) -> None:
    """Drip the example runners course to three demo subscribers in three time zones, through a
    real local SMTP server, over simulated weeks; then show what arrived when."""
    run_demo(folder, weeks, app.settings.courses_dir, echo=click.echo)


def register(cli: click.Group) -> None:
    cli.add_command(demo)
