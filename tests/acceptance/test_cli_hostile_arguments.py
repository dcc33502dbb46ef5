"""Every command and subcommand, found by walking the click tree (a new command is tried the day it
is added), run with rows of hostile arguments: missing and unwritable paths, huge and negative
numbers, unknown names, malformed dates, zones and addresses. For each: exit status 0, 1 or 2, no
traceback, at most two lines on stderr, and no new file in the working folder (issue 12)."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest

from dripcourse.app.subscriptions import subscribe
from dripcourse.cli.main import register
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.store import migrations
from dripcourse.store.db import Database, sqlite_path

EXAMPLE_COURSES = Path(__file__).resolve().parents[2] / "emails"
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ROWS = ("missing", "unwritable", "huge", "negative", "unknown", "malformed")
HANG_GUARD_SECONDS = 60  # a command that waits on something would hang the suite: fail instead

PATHS = {
    "missing": "/nonexistent/dir/x",
    "unwritable": "/proc/nope/x",
    "huge": "x" * 5000,
    "negative": "/dev/full/x",
    "unknown": "/nonexistent.csv",
    "malformed": "",
}
NUMBERS = {
    "missing": "",
    "unwritable": "1e309",
    "huge": "99999999999999999999",
    "negative": "-5",
    "unknown": "abc",
    "malformed": "0x10",
}
INSTANTS = {
    "missing": "",
    "unwritable": "2026-02-30T08:00:00Z",
    "huge": "9999-12-31T23:59:59-23:59",
    "negative": "-1",
    "unknown": "next tuesday",
    "malformed": "2026-03-02T08:00:00+99:00",
}
ZONES = {
    "missing": "",
    "unwritable": "Etc/Nowhere",
    "huge": "A/" * 2000,
    "negative": "-05:00",
    "unknown": "Mars/Olympus_Mons",
    "malformed": "EST",
}
ADDRESSES = {
    "missing": "",
    "unwritable": "root@localhost",
    "huge": "x" * 300 + "@example.com",
    "negative": "-@-",
    "unknown": "nobody@example.com",
    "malformed": "jörg@example.com",
}
NAMES = {
    "missing": "",
    "unwritable": "../../etc/passwd",
    "huge": "x" * 5000,
    "negative": "-1",
    "unknown": "nosuch",
    "malformed": "runners\r\nX-Injected: 1",
}
URLS = {
    "missing": "",
    "unwritable": "sqlite:////proc/nope/x.db",
    "huge": "sqlite:///" + "x" * 5000,
    "negative": "postgresql+psycopg://postgres@127.0.0.1:1/x",
    "unknown": "nosuchdb://x",
    "malformed": "not a url",
}


def value_for(param: click.Parameter, row: str) -> str:
    name = param.name or ""
    if isinstance(param.type, click.Path):
        return PATHS[row]
    if isinstance(param.type, click.types._NumberParamTypeBase):
        return NUMBERS[row]
    if name in ("now", "at", "start"):
        return INSTANTS[row]
    if name == "timezone":
        return ZONES[row]
    if name in ("email", "to"):
        return ADDRESSES[row]
    if name == "url":
        return URLS[row]
    return NAMES[row]


def commands() -> Iterator[tuple[str, ...]]:
    def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path

    yield from walk(register(), ())


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = register()
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def hostile_argv(path: tuple[str, ...], row: str) -> list[str]:
    command = command_at(path)
    argv = list(path)
    values = [p for p in command.params if p.name != "help"]
    if not any(not getattr(p, "is_flag", False) for p in values):
        # Nothing to be hostile with but the settings: a config file that is not there.
        return ["--config", PATHS[row] if row != "huge" else "x" * 5000, *argv]
    for param in values:
        if getattr(param, "is_flag", False):
            continue
        if isinstance(param, click.Argument):
            argv.append(value_for(param, row))
        else:
            argv += [param.opts[0], value_for(param, row)]
    return argv


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated, synced, with one subscriber: made once, copied for every case."""
    path = tmp_path_factory.mktemp("template") / "dripcourse.db"
    database = Database(f"sqlite:///{path}")
    migrations.upgrade(database)
    with database.transaction() as session:
        for source in load_sources(EXAMPLE_COURSES):
            sync_course(session, source, START)
        subscribe(
            session, email="ada@example.com", course_slug="runners", now=START, confirmed=True
        )
    database.dispose()
    return path


@pytest.fixture
def ready(cli, template: Path, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = sqlite_path(settings.database_url)
    assert target is not None
    shutil.copyfile(template, target)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _hung(*_: object) -> None:
    raise TimeoutError(f"the command was still running after {HANG_GUARD_SECONDS} s")


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("path", list(commands()), ids=" ".join)
def test_every_command_answers_hostile_arguments_in_at_most_two_lines(
    cli, ready: Path, path: tuple[str, ...], row: str
) -> None:
    argv = hostile_argv(path, row)
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(HANG_GUARD_SECONDS)
    try:
        result = cli(*argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    shown = f"dripcourse {' '.join(a[:40] for a in argv)}\n{result.err[:2000]}"
    assert result.code in (0, 1, 2), shown
    assert "Traceback" not in result.err, shown
    assert len(result.err.strip().splitlines()) <= 2, shown
    assert list(ready.iterdir()) == [], f"{shown}\nleft behind: {list(ready.iterdir())}"


def test_the_walk_finds_every_command_group() -> None:
    found = {path[0] for path in commands()}
    assert {"db", "courses", "subscribers", "lessons", "tick", "run", "serve"} <= found


# Commands that record no instant (schema, files, servers, read-only views) need no --now.
TIMELESS = {
    ("courses", "calendar"),
    ("courses", "check"),
    ("courses", "list"),
    ("db", "backup"),
    ("db", "migrate-to"),
    ("db", "restore"),
    ("db", "upgrade"),
    ("deliveries", "failed"),
    ("demo",),
    ("lessons", "list"),
    ("lessons", "preview"),
    ("media", "export"),
    ("operators", "list"),
    ("preview",),
    ("queue",),
    ("report",),
    ("run",),
    ("serve",),
    ("subscribers", "list"),
    ("subscribers", "show"),
    ("webhooks", "failures"),
    ("webhooks", "list"),
    ("webhooks", "remove"),
}


def test_every_command_that_changes_something_accepts_now() -> None:
    """The README's promise: time is an input, so every change can be made as of any instant."""
    missing = [
        " ".join(path)
        for path in commands()
        if path not in TIMELESS and "now" not in {p.name for p in command_at(path).params}
    ]
    assert missing == []
