"""The command line's error contract, as an operator meets it: bad input of any kind ends with exit
status 2 and exactly one line on stderr starting "dripcourse: error:", never a traceback, and
leaves the database exactly as it was."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from dripcourse.config import Settings

PREFIX = "dripcourse: error:"
COUNTED = ("subscribers", "enrollments", "deliveries")
# The `cli` fixture of tests/conftest.py: `cli(*args) -> CliResult(code, out, err)`.
CliRunner = Callable[..., Any]


def db_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def row_counts(settings: Settings) -> dict[str, int]:
    with sqlite3.connect(db_path(settings)) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in COUNTED
        }


def run(cli: CliRunner, *args: str) -> Any:
    """`cli(*args)`, where an exception escaping `main` is a failure: the console script would
    print a traceback and exit 1."""
    try:
        return cli(*args)
    except Exception as exc:
        escaped = exc
    pytest.fail(
        f"`dripcourse {' '.join(map(repr, args))}` escaped main() with {escaped!r}: "
        "the console script prints a traceback and exits 1",
        pytrace=False,
    )


def assert_one_error_line(result: Any, *expected: str) -> None:
    assert result.code == 2, f"exit {result.code}; stdout={result.out!r} stderr={result.err!r}"
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"want one line on stderr, got {lines!r}"
    assert lines[0].startswith(PREFIX), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"


@pytest.fixture
def migrated(cli: CliRunner, courses_dir: Path, settings: Settings) -> Settings:
    """A database migrated and synced with two courses, and people in every state we need:
    ada active in runners, bea active in walkers only, cal unsubscribed from runners."""
    shutil.copytree(courses_dir / "runners", courses_dir / "walkers")
    steps = [
        ("db", "upgrade"),
        ("courses", "sync"),
        ("subscribe", "ada@example.com", "--course", "runners", "--confirmed"),
        ("subscribe", "bea@example.com", "--course", "walkers", "--confirmed"),
        ("subscribe", "cal@example.com", "--course", "runners", "--confirmed"),
        ("unsubscribe", "cal@example.com", "--course", "runners"),
    ]
    for step in steps:
        result = cli(*step)
        assert result.code == 0, (step, result)
    return settings


@dataclass(frozen=True)
class Case:
    args: Callable[[Path], tuple[str, ...]] | tuple[str, ...]
    says: tuple[str, ...] = ()
    """Words the error line must contain."""
    env: dict[str, str] = field(default_factory=dict)


def case(
    label: str, *args: str, says: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Any:
    return pytest.param(Case(args, says, env or {}), id=label)


def with_file(
    label: str, build: Callable[[Path], tuple[str, ...]], says: tuple[str, ...] = ()
) -> Any:
    return pytest.param(Case(build, says), id=label)


def unknown_key_config(tmp: Path) -> tuple[str, ...]:
    config = tmp / "dripcourse.toml"
    config.write_text('dispatch_interval = 5\ndatabse_url = "sqlite:///typo.db"\n')
    return ("--config", str(config), "status")


def good_csv(tmp: Path) -> Path:
    path = tmp / "good.csv"
    path.write_text("email,name\nann@example.com,Ann\n", encoding="utf-8")
    return path


SUBSCRIBE = ("subscribe", "new@example.com", "--course", "runners")

BAD_INPUTS = [
    case("bad-address", "subscribe", "not-an-email", "--course", "runners", says=("not-an-email",)),
    case("unknown-course", "subscribe", "a@example.com", "--course", "nope", says=("nope",)),
    case("unknown-zone", *SUBSCRIBE, "--timezone", "Mars/Olympus", says=("Mars/Olympus",)),
    case("name-with-newline", *SUBSCRIBE, "--name", "Ann\nLee", says=("name",)),
    case("name-with-carriage-return", *SUBSCRIBE, "--name", "Ann\rLee", says=("name",)),
    case("name-500-chars", *SUBSCRIBE, "--name", "n" * 500, says=("200",)),
    # What Python makes of a name, course or zone holding bytes that are not UTF-8 (a Latin-1
    # terminal, a pasted file): argv is decoded with surrogateescape, so `\xff` arrives as '\udcff'.
    case("name-not-utf8", *SUBSCRIBE, "--name", "Ren\udce9e"),
    case("course-not-utf8", "subscribe", "a@example.com", "--course", "runn\udce9rs"),
    case("zone-not-utf8", *SUBSCRIBE, "--timezone", "Europe/Z\udcfcrich"),
    case("tick-now-not-a-date", "tick", "--now", "yesterday", says=("yesterday", "ISO-8601")),
    case("preview-no-such-lesson", "lessons", "preview", "runners", "99", says=("99",)),
    # "²".isdigit() is true, but it is no number a lesson can have.
    case("preview-superscript-number", "lessons", "preview", "runners", "²", says=("²",)),
    case("list-lessons-slug-not-utf8", "lessons", "list", "runn\udce9rs"),
    case("queue-neither-to-nor-all", "lessons", "queue", "runners", "1", says=("--to",)),
    case(
        "queue-both-to-and-all",
        *("lessons", "queue", "runners", "1", "--to", "ada@example.com", "--all-active"),
        says=("--all-active",),
    ),
    case("unsubscribe-unknown", "unsubscribe", "nobody@example.com", says=("nobody@example.com",)),
    case("pause-unknown", "pause", "nobody@example.com", says=("nobody@example.com",)),
    case(
        "pause-not-in-course",
        *("pause", "bea@example.com", "--course", "runners"),
        says=("bea@example.com", "runners"),
    ),
    case("pause-no-longer-enrolled", "pause", "cal@example.com", says=("cal@example.com",)),
    case(
        "resume-not-paused-in-course",
        *("resume", "ada@example.com", "--course", "runners"),
        says=("ada@example.com", "not paused"),
    ),
    case("resume-not-paused", "resume", "ada@example.com", says=("ada@example.com",)),
    with_file(
        "import-missing-file",
        lambda tmp: ("subscribers", "import", str(tmp / "missing.csv"), "--course", "runners"),
        says=("missing.csv",),
    ),
    with_file(
        "import-into-unknown-course",
        lambda tmp: ("subscribers", "import", str(good_csv(tmp)), "--course", "nope"),
        says=("nope",),
    ),
    with_file(
        "import-a-folder",
        lambda tmp: ("subscribers", "import", str(tmp), "--course", "runners"),
        says=("directory",),
    ),
    with_file("config-unknown-key", unknown_key_config, says=("databse_url",)),
    case(
        "unknown-backend-scheme",
        "tick",
        says=("nope://x", "smtp:", "console:", "file:", "memory:"),
        env={"DRIPCOURSE_EMAIL_BACKEND": "nope://x"},
    ),
    case("missing-argument", "subscribe", says=("EMAIL",)),
]


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    bad: Case,
    cli: CliRunner,
    migrated: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value)
    args = bad.args(tmp_path) if callable(bad.args) else bad.args
    before = row_counts(migrated)

    result = run(cli, *args)

    assert_one_error_line(result, *bad.says)
    assert row_counts(migrated) == before


@pytest.fixture
def never_upgraded(settings: Settings) -> Iterator[Path]:
    path = db_path(settings)
    assert not path.exists()
    yield path


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("subscribe", "a@example.com", "--course", "runners"),
        ("tick",),
        ("courses", "sync"),
        ("subscribers", "list"),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_database_never_upgraded_says_run_db_upgrade(
    args: tuple[str, ...],
    cli: CliRunner,
    never_upgraded: Path,
) -> None:
    result = run(cli, *args)

    assert_one_error_line(result, "dripcourse db upgrade")
    if never_upgraded.exists():
        with sqlite3.connect(never_upgraded) as connection:
            tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
        assert tables == [], "a refused command created tables"


# Arbitrary argv text: what a user may type, and what Python makes of bytes that are not UTF-8.
ARGV_TEXT = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=60).map(
        lambda raw: raw.replace(b"\0", b"").decode("utf-8", "surrogateescape")
    ),
)


@pytest.mark.parametrize("field_name", ["email", "name", "timezone"])
@hypothesis.settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=ARGV_TEXT)
def test_subscribe_with_arbitrary_text_exits_0_or_2_never_a_traceback(
    field_name: str,
    text: str,
    cli: CliRunner,
    migrated: Settings,
) -> None:
    values = {"email": "fuzz@example.com", "name": "Fuzz Tester", "timezone": "Europe/Berlin"}
    values[field_name] = text
    # `--opt=value` and `--` keep click from reading the text as an option of its own.
    args = (
        "subscribe",
        "--course",
        "runners",
        f"--name={values['name']}",
        f"--timezone={values['timezone']}",
        "--",
        values["email"],
    )

    before = row_counts(migrated)

    result = run(cli, *args)

    assert result.code in (0, 2), (result.code, result)
    assert "Traceback" not in result.err
    if result.code == 2:
        assert_one_error_line(result)
        assert row_counts(migrated) == before
