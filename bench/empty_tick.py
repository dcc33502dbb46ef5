"""An empty tick on a big database: how long a pass takes when nothing is due, and its query plans.

python bench/empty_tick.py --subscribers 1000000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
PLANS = {
    "who is owed a lesson now (materialise)": (
        "SELECT enrollments.id FROM enrollments JOIN subscribers ON "
        "enrollments.subscriber_id = subscribers.id WHERE enrollments.status = 'active' "
        "AND enrollments.next_due_at <= :now ORDER BY enrollments.next_due_at LIMIT 200"
    ),
    "what is ready to send (claim)": (
        "SELECT deliveries.id FROM deliveries JOIN enrollments ON deliveries.enrollment_id = "
        "enrollments.id WHERE deliveries.status = 'pending' AND deliveries.next_attempt_at <= :now "
        "ORDER BY deliveries.next_attempt_at LIMIT 200"
    ),
    "claims of dead workers (claim)": (
        "SELECT deliveries.id FROM deliveries WHERE deliveries.status = 'sending' "
        "AND deliveries.lease_expires_at <= :now LIMIT 200"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='dripcourse-empty-')) / 'big.db'}"
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(HERE / "setup_db.py"),
            url,
            "--due",
            "0",
            "--idle",
            str(args.subscribers),
            "--courses",
            str(HERE.parent / "emails"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"built {args.subscribers:,} subscribers in {time.perf_counter() - began:.0f} s")
    settings = Settings(database_url=url, email_backend="memory:", secret_key="bench")
    database = Database(url)
    dispatcher = Dispatcher(database, settings, load_backend("memory:"), FixedClock(NOW))
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        report = dispatcher.run_pass()
        timings.append((time.perf_counter() - started) * 1000)
        assert report.materialised == 0 and not report.counts
    print(
        f"empty pass over {args.subscribers:,} subscribers: median {statistics.median(timings):.1f} ms,"
        f" max {max(timings):.1f} ms ({args.runs} runs, first {timings[0]:.1f} ms)"
    )
    with database.engine.connect() as connection:
        for title, query in PLANS.items():
            plan = connection.execute(text("EXPLAIN QUERY PLAN " + query), {"now": NOW}).all()
            print(f"\n{title}:")
            for row in plan:
                print(f"  {row[-1]}")
    database.dispose()


if __name__ == "__main__":
    main()
