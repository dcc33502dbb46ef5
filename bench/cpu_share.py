"""Who uses the cores while `dripcourse tick` sends N lessons: CPU per message of dripcourse (the
tick and its worker processes), of the PostgreSQL server, of the sink, and the cores left idle.

    .venv/bin/python bench/cpu_share.py --size 20000 sqlite:2 sqlite:1 postgres:1 postgres:2

Each run is `run.py`'s: a database of N due lessons built by setup_db.py (a fresh SQLite file, or a
fresh schema on the PostgreSQL server of --postgres), then one `dripcourse tick` with
DRIPCOURSE_WORKERS set, timed as a whole process. CPU times are read from /proc (Linux only):
dripcourse's from the children's rusage, the server's and the sink's from their processes' stat
(every process whose name starts with "postgres" counts), idle from /proc/stat. The columns add up
to about "cores x wall"; what is left is the kernel's and other processes' share.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from run import DRIPCOURSE, NOW, due_lessons, postgres_schema, sink

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(name_prefix: str) -> float:
    """CPU seconds used so far by the processes whose name starts with `name_prefix`, and by
    their waited-for children."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not Path(f"/proc/{pid}/comm").read_text().startswith(name_prefix):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def idle_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (values[3] + values[4]) / TICKS  # idle and iowait, over all cores


def measure(port: int, url: str, workers: str, count: int) -> dict[str, float]:
    env = due_lessons(url, count, port, {"DRIPCOURSE_WORKERS": workers})
    server, sink_cpu, idle = cpu_of("postgres"), cpu_of("smtp-sink"), idle_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [DRIPCOURSE, "tick", "--now", NOW, "-q"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if f"{count} sent" not in done.stdout:
        raise SystemExit(f"dripcourse did not send {count}: {done.stdout} {done.stderr}")
    ours = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rate": count / wall,
        "dripcourse": ours,
        "postgres": cpu_of("postgres") - server,
        "sink": cpu_of("smtp-sink") - sink_cpu,
        "idle": idle_seconds() - idle,
        "cores x wall": (os.cpu_count() or 1) * wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="sqlite:WORKERS or postgres:WORKERS")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", metavar="URL"
    )
    args = parser.parse_args()
    columns = ["dripcourse", "postgres", "sink", "idle", "cores x wall"]
    print(f"N = {args.size:,}; µs of CPU per message\n")
    print("| run | messages/s | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    with sink() as (_, port, kind), tempfile.TemporaryDirectory() as workdir:
        if kind != "postfix smtp-sink":
            print("(the sink is aiosmtpd: its CPU is not counted)")
        for number, run in enumerate(args.runs):
            database, _, workers = run.partition(":")
            if database == "sqlite":
                url = f"sqlite:///{workdir}/cpu-{number}.db"
                figures = measure(port, url, workers, args.size)
            elif database == "postgres":
                with postgres_schema(args.postgres, f"cpu_share_{number}") as url:
                    figures = measure(port, url, workers, args.size)
            else:
                raise SystemExit(f"not a run: {run!r} (sqlite:N or postgres:N)")
            cells = " | ".join(f"{figures[c] / args.size * 1e6:,.0f}" for c in columns)
            print(f"| {database}, {workers} worker(s) | {figures['rate']:,.0f} | {cells} |")


if __name__ == "__main__":
    main()
