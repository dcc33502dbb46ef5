"""One worker's pass, in this process, on a fresh database of N due lessons: its rate, the CPU it
took per message, and the statements it sent (counted with a SQLAlchemy event).

    python bench/profile_pass.py sqlite:////tmp/profile.db 10000
    python bench/profile_pass.py postgresql+psycopg://postgres@127.0.0.1:5432/test 10000
    py-spy record -f raw -o pass.raw -- .venv/bin/python bench/profile_pass.py URL 10000

On PostgreSQL it works in a schema of its own (`profile_pass`), dropped afterwards. The sink is
the one of `run.py` (Postfix's smtp-sink when bench/.postfix holds it).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from run import HERE, postgres_schema, sink
from setup_db import build
from sqlalchemy import event

from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import load_settings
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database, sqlite_path

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def profile(url: str, count: int) -> None:
    path = sqlite_path(url)
    if path is not None:
        path.unlink(missing_ok=True)
    build(url, HERE.parent / "emails", count, 0)
    with sink() as (host, port, _kind):
        settings = load_settings(
            None,
            {
                "DRIPCOURSE_DATABASE_URL": url,
                "DRIPCOURSE_EMAIL_BACKEND": f"smtp://{host}:{port}?tls=none",
                "DRIPCOURSE_SECRET_KEY": "bench",
            },
        )
        database = Database(url)
        statements: Counter[str] = Counter()

        @event.listens_for(database.engine, "before_cursor_execute")
        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements[" ".join(statement.split())[:72]] += 1

        @event.listens_for(database.engine, "begin")
        def count_begin(_conn: Any) -> None:
            statements["BEGIN"] += 1

        @event.listens_for(database.engine, "commit")
        def count_commit(_conn: Any) -> None:
            statements["COMMIT"] += 1

        backend = load_backend(settings.email_backend)
        dispatcher = Dispatcher(database, settings, backend, FixedClock(NOW))
        began, cpu = time.perf_counter(), time.process_time()
        sent = dispatcher.run_pass(workers=1).count("sent")
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        database.dispose()
    print(
        f"{sent} sent in {seconds:.2f} s: {sent / seconds:,.0f}/s; per message "
        f"{seconds / sent * 1e6:.0f} µs wall, {cpu / sent * 1e6:.0f} µs CPU of this process"
    )
    batches = max(1, sent // settings.batch_size)
    print(
        f"statements (BEGIN and COMMIT included): {sum(statements.values())}, per batch of "
        f"{settings.batch_size}: {sum(statements.values()) / batches:.1f}"
    )
    for text, times in statements.most_common():
        print(f"  {times:6d}  {text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    args = parser.parse_args()
    if args.url.startswith("postgresql"):
        with postgres_schema(args.url, "profile_pass") as url:
            profile(url, args.count)
    else:
        profile(args.url, args.count)
