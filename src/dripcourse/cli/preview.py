"""`dripcourse preview`: the authors' preview server, listening on this machine only by default."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from dripcourse.cli.main import App, pass_app
from dripcourse.errors import BadInput


@click.command("preview")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--host",
    default="127.0.0.1",
    help="Address to listen on. The preview has no login: keep it on this machine.",
)
@click.option("--port", default=8025, type=click.IntRange(0, 65535), help="Port to listen on.")
@pass_app
def preview(app: App, path: Path | None, host: str, port: int) -> None:
    """See the lessons as emails in a browser while you write them.

    Lists the courses (all under the courses folder, or PATH: one course folder or a folder of
    courses) and shows each lesson as its HTML email at phone and desktop width, its text part and
    its checks, for a sample subscriber whose name and time zone you can change. The page reloads
    by itself when a file changes; a mistake shows as file:line: message.
    """
    # Imported here: the web stack takes half a second to load, which every other command is spared.
    import uvicorn

    from dripcourse.courses.catalog import load_sources
    from dripcourse.web.preview import create_preview_app

    courses = load_sources(app.settings.courses_dir, path)  # none found: one line, exit 2
    listener = _listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"dripcourse preview of {len(courses)} course(s) on "
        f"http://{shown}:{listener.getsockname()[1]}/ (Ctrl-C to stop)",
        err=True,
    )
    # Access logs stay off: every open page asks for the version stamp once a second.
    address = f"http://{shown}:{listener.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(create_preview_app(app.settings, path, address=address), log_level="warning")
    )
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        # Ctrl-C is how an author stops it: uvicorn shuts down, then raises the signal again.
        click.echo("dripcourse preview stopped", err=True)
    finally:
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, opened here so that a port in use is one line, not a log record."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        # create_server rewrites the message to repeat the address: say only the reason.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BadInput(f"cannot listen on {host}:{port}: {reason}") from None


def register(cli: click.Group) -> None:
    cli.add_command(preview)
