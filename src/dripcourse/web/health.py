"""`GET /healthz` and `GET /readyz`: for the reverse proxy, the process supervisor and Prometheus.

`/healthz` says the process answers HTTP; nothing more is checked, so a supervisor restarts only a
process that is truly stuck. `/readyz` says this process can do its work: the database answers,
its schema is the one this version needs, and the scheduler runs when this process runs one;
otherwise 503 with the reason. Both answer without a token, so they say nothing an outsider could
use: no URL, no host, no version of anything, no error text from a driver (that is logged).

A database that has gone must not make `/readyz` hang with it: each check opens a connection of
its own (never one the pool kept open on a file since removed), with short timeouts, in a thread,
and the answer is 503 after `READY_TIMEOUT` seconds whatever the thread is still waiting for. One
check runs at a time: probes that come while a check hangs get 503 at once instead of piling up
threads.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from dripcourse.store import migrations
from dripcourse.store.db import Database, sqlite_path

log = logging.getLogger(__name__)

READY_TIMEOUT = 3.0
"""Seconds `/readyz` waits for the database before it answers 503."""
CONNECT_TIMEOUT = 2
"""Seconds a connection of the check may take (PostgreSQL's connect_timeout, SQLite's lock)."""

UNREACHABLE = "the database cannot be reached"
SLOW = f"the database did not answer within {READY_TIMEOUT:g} s"
STILL_WAITING = "the previous check of the database has not returned yet"
BEHIND = "the database schema is not the one this version needs; run `dripcourse db upgrade`"
NO_SCHEDULER = "the scheduler of this process is not running"

router = APIRouter(include_in_schema=False)


class Readiness:
    def __init__(self, database: Database, scheduler_alive: Callable[[], bool] | None) -> None:
        self.database = database
        self.scheduler_alive = scheduler_alive
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dripcourse-readyz")
        self._running: Future[str | None] | None = None
        self._engine: Engine | None = None
        self._head: str | None = None

    async def problem(self) -> str | None:
        """Why this process is not ready, or None."""
        if self.scheduler_alive is not None and not self.scheduler_alive():
            return NO_SCHEDULER
        if self._running is not None and not self._running.done():
            return STILL_WAITING
        self._running = self._thread.submit(self._check_database)
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(self._running)), READY_TIMEOUT
            )
        except TimeoutError:
            return SLOW

    def _check_database(self) -> str | None:
        path = sqlite_path(self.database.url)
        if path is not None and not path.is_file():
            return UNREACHABLE  # connecting would make an empty one
        try:
            if self._head is None:
                self._head = migrations.head_revision(self.database)
            with self._probe_engine().connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            log.warning("readiness: %s: %s", UNREACHABLE, type(exc).__name__)
            return UNREACHABLE
        return None if current == self._head else BEHIND

    def _probe_engine(self) -> Engine:
        """An engine without a pool: every check is a new connection, with short timeouts."""
        if self._engine is None:
            url = make_url(self.database.url)
            path = sqlite_path(self.database.url)
            args: dict[str, Any] = {}
            if path is not None:
                # mode=rw: an SQLite file that has gone is an error, not a new empty database.
                uri = f"{path.absolute().as_uri()}?mode=rw"
                args["creator"] = lambda: sqlite3.connect(
                    uri, uri=True, timeout=CONNECT_TIMEOUT, check_same_thread=False
                )
                url = make_url("sqlite://")
            elif url.get_backend_name() == "postgresql":
                args["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
            self._engine = create_engine(url, poolclass=NullPool, **args)
        return self._engine


@router.get("/healthz")
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    problem = await readiness.problem()
    headers = {"Cache-Control": "no-store"}
    if problem is not None:
        return JSONResponse(
            {"status": "unavailable", "reason": problem}, status_code=503, headers=headers
        )
    scheduler = "ok" if readiness.scheduler_alive is not None else "not in this process"
    return JSONResponse(
        {
            "status": "ready",
            "checks": {"database": "ok", "schema": "ok", "scheduler": scheduler},
        },
        headers=headers,
    )
