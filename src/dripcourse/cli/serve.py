"""`dripcourse serve`: the HTTP side, and (unless told not to) the scheduler in the same process."""

from __future__ import annotations

import logging

import click

from dripcourse.app.housekeeping import daily
from dripcourse.cli.main import App, pass_app
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.sending.scheduler import Scheduler
from dripcourse.telemetry import folder

log = logging.getLogger(__name__)
access = logging.getLogger("dripcourse.access")


@click.command("serve")
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option("--port", default=8000, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Serve HTTP only; run `dripcourse run` elsewhere to send mail.",
)
@click.option("--quiet", "-q", is_flag=True, help="No line per request.")
@pass_app
def serve(app: App, host: str, port: int, no_scheduler: bool, quiet: bool) -> None:
    """Serve the sign-up pages, unsubscribe links and the operator API.

    With the scheduler (the default) a small deployment is one process: a sign-up's confirmation
    email goes out within seconds, and lessons on the usual interval.
    """
    # Imported here: the web stack takes half a second to load, which every other command is spared.
    import uvicorn

    from dripcourse.web.app import create_app

    database = app.database()
    folder.claim()
    json_logs = app.log_format == "json"
    write_access = (lambda line: access.info(line)) if json_logs else _echo
    if json_logs:
        # Request lines are what a log shipper is for: written whatever -v says.
        access.setLevel(logging.INFO)
    scheduler = None
    if not no_scheduler:
        dispatcher = Dispatcher(database, app.settings, app.backend(), app.clock)
        housekeeping = daily(database, app.settings, app.clock)
        scheduler = Scheduler(app.settings, dispatcher, app.clock, housekeeping)
    web = create_app(
        app.settings,
        database,
        app.clock,
        wake=scheduler.wake if scheduler else lambda: None,
        access_log=None if quiet else write_access,
        scheduler_alive=scheduler.alive if scheduler else None,
    )
    if scheduler is not None:
        scheduler.start()
    started = f"dripcourse serving on http://{host}:{port} (Ctrl-C to stop)"
    if json_logs:
        access.info(started)
    else:
        click.echo(started, err=True)
    try:
        # uvicorn handles SIGINT/SIGTERM itself and returns after a graceful shutdown.
        # uvicorn's own access log would write the signed tokens of confirm and unsubscribe
        # links; ours (web/accesslog.py) leaves them out.
        # With JSON logs uvicorn keeps its own logging unconfigured: its lines go to ours.
        uvicorn.run(
            web,
            host=host,
            port=port,
            log_level="info",
            proxy_headers=True,
            access_log=False,
            log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
        )
    finally:
        if scheduler is not None:
            scheduler.shutdown()


def _echo(line: str) -> None:
    click.echo(line, err=True)


def register(cli: click.Group) -> None:
    cli.add_command(serve)
