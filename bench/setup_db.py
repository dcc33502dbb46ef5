"""Builds a benchmark database: the runners course synced and N subscribers due at one instant.

Any database URL works: a SQLite file, or an empty PostgreSQL database (postgresql+psycopg://...).

Written with bulk INSERTs (not the subscribe operation) because the point is the state, not how it
was reached: N active enrolments whose lesson 1 is due at `DUE`, plus optional idle subscribers.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.store import migrations
from dripcourse.store.db import Database
from dripcourse.store.models import Course, Enrollment, Subscriber

DUE = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
ZONES = ["America/Toronto", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "UTC"]
CHUNK = 20_000


def build(url: str, courses: Path, due: int, idle: int) -> None:
    database = Database(url)
    migrations.upgrade(database)
    with database.transaction() as session:
        sync_course(session, load_sources(courses)[0], DUE - timedelta(days=1))
        course_id = session.scalars(select(Course.id)).one()
    for start in range(0, due + idle, CHUNK):
        numbers = range(start, min(start + CHUNK, due + idle))
        with database.transaction() as session:
            # Ids in the order of the rows (not "first + i": PostgreSQL's sequence need not be dense).
            ids = session.scalars(
                insert(Subscriber).returning(Subscriber.id, sort_by_parameter_order=True),
                [
                    {
                        "email": f"reader{n}@example.com",
                        "name": f"Reader {n}",
                        "timezone": ZONES[n % len(ZONES)],
                        "created_at": DUE - timedelta(days=1),
                    }
                    for n in numbers
                ],
            ).all()
            session.execute(
                insert(Enrollment),
                [
                    {
                        "subscriber_id": ids[i],
                        "course_id": course_id,
                        "status": "active",
                        "source": "bench",
                        "created_at": DUE - timedelta(days=1),
                        "confirmed_at": DUE - timedelta(days=1),
                        # The idle ones are due in a year: present in the index, not due now.
                        "next_due_at": DUE if n < due else DUE + timedelta(days=365),
                    }
                    for i, n in enumerate(numbers)
                ],
            )
    database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--courses", type=Path, default=Path("emails"))
    parser.add_argument("--due", type=int, default=20_000)
    parser.add_argument("--idle", type=int, default=0)
    args = parser.parse_args()
    began = time.perf_counter()
    build(args.url, args.courses, args.due, args.idle)
    print(f"built {args.due} due + {args.idle} idle in {time.perf_counter() - began:.1f} s")
