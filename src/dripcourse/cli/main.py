"""The root command group, the shared application context, and the error contract.

Bad input of any kind ends with exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from dripcourse.app import audit
from dripcourse.app.webhooks import keep_configured
from dripcourse.backends import load_backend
from dripcourse.backends.base import DeliveryBackend
from dripcourse.clock import Clock, FixedClock, SystemClock
from dripcourse.config import Settings, load_settings
from dripcourse.domain.validation import parse_instant
from dripcourse.errors import BadInput, DripcourseError
from dripcourse.mail.dkim import signer_for
from dripcourse.store import migrations
from dripcourse.store.db import Database, sqlite_path
from dripcourse.telemetry import folder, logs

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command needs, built once per invocation from the settings."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    log_format: str = "text"
    _database: Database | None = None

    def database(self, *, require_schema: bool = True) -> Database:
        if self._database is None:
            path = sqlite_path(self.settings.database_url)
            if require_schema and path is not None and not path.exists():
                # Not made here: a typo in the URL must not leave an empty database behind.
                raise BadInput(f"no database at {path}; run `dripcourse db upgrade` to create it")
            self._database = Database(
                self.settings.database_url, busy_timeout_ms=self.settings.sqlite_busy_timeout_ms
            )
            if require_schema:
                self._check_schema(self._database)
                # The endpoints of the settings stored before anything can emit an event.
                keep_configured(
                    self._database,
                    self.settings.webhook_endpoints,
                    self.settings.webhook_secret,
                    self.clock.now(),
                )
        return self._database

    def backend(self) -> DeliveryBackend:
        return load_backend(self.settings.email_backend)

    def at(self, now: str | None) -> None:
        """Pin the clock to `--now`, so a command acts as if it were that instant."""
        if now is not None:
            self.clock = FixedClock(parse_instant(now))

    @staticmethod
    def _check_schema(database: Database) -> None:
        try:
            current = migrations.current_revision(database)
        except OperationalError as exc:
            raise BadInput(f"cannot open the database {database.url}: {exc.orig}") from None
        if current != migrations.head_revision(database):
            raise BadInput(
                f"the database {database.url} is not up to date (at {current or 'empty'}"
                "); run `dripcourse db upgrade`"
            )

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()


pass_app = click.make_pass_decorator(App)


def now_option(command: F) -> F:
    return click.option(
        "--now",
        metavar="ISO-8601",
        help="Act as if it were this instant (UTC unless an offset is given).",
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DRIPCOURSE_CONFIG",
    show_envvar=True,
    help="A TOML file of settings; DRIPCOURSE_* variables override it.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="text",
    envvar="DRIPCOURSE_LOG_FORMAT",
    show_envvar=True,
    help="How log lines on stderr look: text for people, json (one object a line) for shippers.",
)
@click.version_option(package_name="dripcourse")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: bool, log_format: str) -> None:
    """dripcourse: drip email courses written as files, sent at each subscriber's own
    local send time.

    Settings come from DRIPCOURSE_DATABASE_URL, DRIPCOURSE_EMAIL_BACKEND, DRIPCOURSE_BASE_URL,
    DRIPCOURSE_COURSES_DIR and DRIPCOURSE_SECRET_KEY (or a --config file).
    """
    logs.configure(log_format, logging.INFO if verbose else logging.WARNING)
    settings = load_settings(config)
    logs.keep_secret(logs.secret_values(settings))
    # Before anything counts: every process of the deployment counts into one folder (its children
    # inherit the variable), which /metrics adds up.
    folder.prepare(settings)
    # Checked at start-up, so that a bad DKIM key is one clear line and not a failure in every send.
    signer_for(settings)
    app = App(settings=settings, log_format=log_format)
    ctx.obj = app
    ctx.call_on_close(app.close)


_registered = False


def register() -> click.Group:
    """The root group with every command group attached (done once, on first use)."""
    global _registered
    if not _registered:
        from dripcourse.cli import (
            bounces,
            courses,
            database,
            deliveries,
            demo,
            lessons,
            media,
            operators,
            preview,
            report,
            running,
            serve,
            subscribers,
            timeline,
            webhooks,
        )

        for module in (
            database,
            courses,
            subscribers,
            lessons,
            running,
            timeline,
            report,
            serve,
            preview,
            demo,
            bounces,
            operators,
            deliveries,
            media,
            webhooks,
        ):
            module.register(cli)
        _registered = True
    return cli


def main(argv: list[str] | None = None) -> None:
    """The console script: runs a command and turns every expected failure into one line."""
    try:
        code = register().main(args=argv, prog_name="dripcourse", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("dripcourse: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        fail(exc.format_message())
    except DripcourseError as exc:
        fail(str(exc))
    except (OperationalError, ProgrammingError) as exc:
        fail(f"database error: {exc.orig}")
    except OSError as exc:
        # A file or folder named on the command line or in the settings that cannot be used:
        # say which and why, as `cp` would.
        fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def command_line_actor() -> str:
    """Who the audit log says made a change from the command line: the account of the process,
    not $USER or $LOGNAME, which whoever runs it can set."""
    if sys.platform == "win32":
        return audit.command_line_actor(getpass.getuser())
    import pwd

    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # no name for this uid (a container's)
        user = ""
    return audit.command_line_actor(f"{user}, uid {uid}" if user else f"uid {uid}")


def fail(message: str) -> None:
    click.echo(f"dripcourse: error: {' '.join(message.split())}", err=True)
    sys.exit(2)


def local_time(instant: datetime | None, zone: str) -> str:
    """`YYYY-MM-DD HH:MM Zone/Name`, the way every command prints a future time."""
    from zoneinfo import ZoneInfo

    if instant is None:
        return "-"
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def utc_time(instant: datetime | None) -> str:
    return "-" if instant is None else f"{instant:%Y-%m-%d %H:%M} UTC"
