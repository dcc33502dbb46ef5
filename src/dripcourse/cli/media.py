"""`dripcourse media ...`: the courses' processed images, for operators who serve them from a CDN."""

from __future__ import annotations

from pathlib import Path

import click

from dripcourse.app.media import export
from dripcourse.cli.main import App, pass_app


@click.group("media")
def media_group() -> None:
    """The courses' images, as `courses sync` processed them."""


@media_group.command("export")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--course", metavar="SLUG", help="Only this course's images (default: all).")
@pass_app
def export_command(app: App, folder: Path, course: str | None) -> None:
    """Write every image to FOLDER as COURSE/NAME, ready to upload where DRIPCOURSE_MEDIA_URL
    points: the lessons then ask for <MEDIA_URL>/<course>/<name>.

    Files already in FOLDER are kept (a name never changes its bytes); run it after each
    `courses sync` and upload what is new.
    """
    with app.database().read() as session:
        done = export(session, folder, course)
    click.echo(f"{done.written} image(s) written to {done.folder}, {done.kept} already there")


def register(cli: click.Group) -> None:
    cli.add_command(media_group)
