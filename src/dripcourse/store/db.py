"""The database: engine, session factory, and the one way to open a unit of work.

`Database.transaction()` is opened only at an edge (a CLI command, an HTTP handler, one dispatcher
step); everything below takes the session it is given and never commits.

SQLite gets WAL (readers never wait for the writer), foreign keys, a busy timeout, and `BEGIN
IMMEDIATE` for every unit of work: the write lock is taken up front, so two writers queue instead of
failing with "database is locked" when a read transaction later tries to write. Writers on one
machine also queue on a lock file first: SQLite's own busy handler sleeps 1, 2, 5, 10... ms between
tries, which with several sending workers wasted more time than the writes took, while a waiter on
the lock file wakes the moment it is free. `Database.read()` is a deferred transaction that takes no
lock at all, for checks that only read.

An SQLite file holds personal data and the generated secret key: before each new connection it is
created 0600 if missing (SQLite itself would make it 0644 whatever the umask), or tightened. SQLite
gives the `-wal` and `-shm` files it creates the main file's mode (`robust_open` in os_unix.c), so
they follow; ones left 0644 by an earlier version are tightened at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: writers queue on SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from dripcourse.errors import BadInput
from dripcourse.store.privatefiles import create_private, tighten

READ_ONLY = "dripcourse_read_only"


class Database:
    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False) -> None:
        path = sqlite_path(url)
        if path is not None and not path.parent.is_dir():
            raise BadInput(f"the folder of the database {path} does not exist")
        self.url = url
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._writers = WriterQueue.for_url(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back on any exception."""
        with self._writers, self.sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads: it takes no lock and waits for no writer."""
        with self.readers.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


class WriterQueue:
    """Writers to one SQLite file queue here (an flock on `<file>-writers.lock`, and a thread lock
    for the threads of this process) before they ask SQLite for its write lock. Other databases
    have row locks of their own: for them this queue does nothing."""

    def __init__(self, path: Path | None) -> None:
        self._thread_lock = threading.Lock() if path is not None else None
        self._file = None
        if path is not None and fcntl is not None:
            # Private like the database: anyone who can open the lock file can hold it forever.
            lock = Path(f"{path}-writers.lock")
            create_private(lock)
            self._file = open(lock, "a+b")  # noqa: SIM115 - kept open for life

    @classmethod
    def for_url(cls, url: str) -> WriterQueue:
        return cls(sqlite_path(url))

    def __enter__(self) -> None:
        if self._thread_lock is not None:
            self._thread_lock.acquire()
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        if self._thread_lock is not None:
            self._thread_lock.release()


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for other databases, `:memory:`, and SQLite URI
    filenames (`?uri=true`), whose file SQLite itself finds."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput(f"not a database URL: {url!r}") from None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") in ("true", "1"):
        return None
    return Path(database)


def make_private(path: Path) -> None:
    """The SQLite file `path` 0600 (created empty if missing: SQLite takes an empty file as an
    empty database), and its companions tightened if they were left by an earlier version."""
    if path.parent.is_dir():  # else leave SQLite to say "unable to open database file"
        create_private(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(f"{path}{suffix}")


def upsert_insert(session: Session) -> Any:
    """The INSERT construct of the session's dialect, which has `on_conflict_do_*` (SQLite and
    PostgreSQL spell the clause alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() != "sqlite":
        # psycopg prepares a statement on the server after its fifth run, and PostgreSQL may then
        # settle on a generic plan: for the engine's `IN (...)` lists of a few hundred ids on a
        # table that grew since it was last analysed, that plan scanned every delivery (a batch's
        # lesson histories went from 5 ms to 150 ms). Each statement runs once per batch, so
        # planning it afresh costs nothing worth keeping a plan for.
        try:
            psycopg = parsed.get_driver_name() == "psycopg"  # loads the dialect: inside the try
            unprepared = {"prepare_threshold": None} if psycopg else {}
            return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=unprepared)
        except NoSuchModuleError:
            raise BadInput(f"unknown kind of database {parsed.drivername!r} in {url!r}") from None
        except ModuleNotFoundError as exc:
            extra = " (pip install 'dripcourse[postgres]')" if "psycopg" in str(exc) else ""
            raise BadInput(f"no driver for {parsed.drivername} databases: {exc}{extra}") from None
    engine = create_engine(parsed, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000})
    _configure_sqlite(engine, busy_timeout_ms, sqlite_path(url))
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, path: Path | None) -> None:
    if path is not None:

        @event.listens_for(engine, "do_connect")
        def before_connect(*_args: Any) -> None:
            # At every new connection, not once per engine: the file may be removed and made
            # again meanwhile (a restore, an operator), and SQLite would make it 0644.
            make_private(path)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that we can issue BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # NORMAL is durable across application crashes in WAL mode; only a power cut can lose the
        # last transactions, which SMTP's own at-least-once window already covers.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds only ASCII letters; PostgreSQL's folds every letter. A search
        # for "émile" must find "Émile" on both.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _lower(text: Any) -> Any:
    return text.lower() if isinstance(text, str) else text


HOUSEKEEPING_LOCK = 0x64726970  # "drip": the PostgreSQL advisory lock key of housekeeping


def first_to_housekeep(session: Session) -> bool:
    """Whether this worker does the housekeeping that must run once. On PostgreSQL several
    `dripcourse run` processes wake at 03:17 together: the first takes a transaction-level advisory
    lock and the others skip. On SQLite the `BEGIN IMMEDIATE` of the transaction already makes the
    workers take turns, and the second one finds nothing left to remove."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(housekeeping_lock())))


def housekeeping_lock() -> Any:
    """The advisory lock of housekeeping: ours, and of this schema only. Advisory locks are
    shared by a whole database, so two dripcourse installations in schemas of one database (as
    the tests are) would otherwise take turns at each other's housekeeping."""
    return func.pg_try_advisory_xact_lock(HOUSEKEEPING_LOCK, func.hashtext(func.current_schema()))
