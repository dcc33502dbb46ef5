"""The throughput benchmark of issue 4: raw SMTP, a naive loop, and `dripcourse tick`, side by side.

    python bench/run.py --sizes 20000 100000
    python bench/run.py --sizes 20000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Each run builds a fresh SQLite database with N lessons due, starts a local SMTP sink (Postfix's
`smtp-sink` when bench/.postfix holds an unpacked `apt-get download postfix`, else an aiosmtpd sink),
and times whole processes, start-up included. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POSTFIX = HERE / ".postfix"
PYTHON = sys.executable
DRIPCOURSE = str(Path(PYTHON).with_name("dripcourse"))
NOW = "2026-03-02T14:00:00Z"
MEASURE = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(code)"
)
NAIVE_CAP = 5_000
"""The naive loop is slow; its rate is measured on at most this many messages."""


@dataclass
class Row:
    name: str
    messages: int
    seconds: float
    peak_rss_mb: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postfix_tool(name: str) -> Path | None:
    path = POSTFIX / "usr" / "sbin" / name
    return path if path.exists() else None


def postfix_env() -> dict[str, str]:
    return {**os.environ, "LD_LIBRARY_PATH": str(POSTFIX / "usr" / "lib" / "postfix")}


@contextmanager
def sink():
    """A local SMTP server that accepts and discards everything: (host, port, kind)."""
    port = free_port()
    tool = postfix_tool("smtp-sink")
    if tool:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        process = subprocess.Popen(
            [str(tool), *user, f"127.0.0.1:{port}", "1024"],
            env=postfix_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kind = "postfix smtp-sink"
    else:
        process = subprocess.Popen([PYTHON, str(HERE / "aiosmtpd_sink.py"), str(port)])
        kind = "aiosmtpd sink"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield "127.0.0.1", port, kind
    finally:
        process.terminate()
        process.wait(timeout=10)


def raw(port: int, count: int) -> Row | None:
    tool = postfix_tool("smtp-source")
    if tool is None:
        return None
    began = time.perf_counter()
    subprocess.run(
        [
            str(tool),
            "-d",
            "-s",
            "4",
            "-l",
            "12000",
            "-m",
            str(count),
            "-f",
            "a@example.com",
            "-t",
            "b@example.com",
            f"127.0.0.1:{port}",
        ],
        env=postfix_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return Row("raw (smtp-source -d -s 4, 12 KB)", count, time.perf_counter() - began)


def naive(port: int, count: int) -> Row:
    count = min(count, NAIVE_CAP)
    done = subprocess.run(
        [PYTHON, str(HERE / "naive.py"), "127.0.0.1", str(port), str(count)],
        check=True,
        capture_output=True,
        text=True,
    )
    sent, seconds = done.stdout.split()
    return Row(f"naive (Jinja2 + EmailMessage + smtplib, {sent} msgs)", int(sent), float(seconds))


def due_lessons(url: str, count: int, port: int, extra_env: dict[str, str]) -> dict[str, str]:
    """A database at `url` with `count` lessons due (setup_db.py), and the environment in which a
    `dripcourse tick` sends them to the sink at `port`."""
    setup = [PYTHON, str(HERE / "setup_db.py"), url, "--due", str(count)]
    subprocess.run(
        [*setup, "--courses", str(ROOT / "emails")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return {
        **os.environ,
        "DRIPCOURSE_DATABASE_URL": url,
        "DRIPCOURSE_EMAIL_BACKEND": f"smtp://127.0.0.1:{port}?tls=none",
        "DRIPCOURSE_SECRET_KEY": "bench",
        **extra_env,
    }


def dripcourse(port: int, count: int, url: str, extra_env: dict[str, str], label: str = "") -> Row:
    env = due_lessons(url, count, port, extra_env)
    began = time.perf_counter()
    # A small wrapper process reports the peak RSS of tick and its worker processes (the largest).
    done = subprocess.run(
        [PYTHON, "-c", MEASURE, DRIPCOURSE, "tick", "--now", NOW, "-q"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    peak = int(done.stderr.strip().splitlines()[-1])
    if f"{count} sent" not in done.stdout:
        raise SystemExit(f"dripcourse did not send {count}: {done.stdout} {done.stderr}")
    label = label or "dripcourse tick (all headers, both parts, ledger)"
    if extra_env and not label.startswith("dripcourse on PostgreSQL"):
        label += " " + " ".join(
            f"{k.removeprefix('DRIPCOURSE_').lower()}={v}" for k, v in extra_env.items()
        )
    return Row(label, count, seconds, peak / 1024)


@contextmanager
def postgres_schema(server_url: str, name: str) -> Iterator[str]:
    """An empty schema of its own on the PostgreSQL server, dropped afterwards: a URL using it."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.dispose()


def on_postgres(port: int, count: int, server_url: str) -> list[Row]:
    """`dripcourse tick` on PostgreSQL with 1, 2 and 4 sending processes (DRIPCOURSE_WORKERS)."""
    rows = []
    for workers in (1, 2, 4):
        with postgres_schema(server_url, f"bench_{count}_{workers}") as url:
            label = f"dripcourse on PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"
            rows.append(dripcourse(port, count, url, {"DRIPCOURSE_WORKERS": str(workers)}, label))
    return rows


def table(rows: list[Row], naive_row: Row, raw_row: Row | None) -> str:
    lines = [
        "| run | messages | seconds | messages/s | x naive | % of raw | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        versus_raw = f"{100 * row.rate / raw_row.rate:.0f}%" if raw_row else "-"
        rss = f"{row.peak_rss_mb:.0f} MB" if row.peak_rss_mb else "-"
        lines.append(
            f"| {row.name} | {row.messages:,} | {row.seconds:.2f} | {row.rate:,.0f} | "
            f"{row.rate / naive_row.rate:.1f} | {versus_raw} | {rss} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--workers", default="", help="DRIPCOURSE_WORKERS for the dripcourse run")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="",
        help="also run on this PostgreSQL server with 1, 2 and 4 workers (a schema per run), "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    extra = {"DRIPCOURSE_WORKERS": args.workers} if args.workers else {}
    workdir = Path(tempfile.mkdtemp(prefix="dripcourse-bench-"))
    try:
        for size in args.sizes:
            with sink() as (_, port, kind):
                raw_row = raw(port, size)
                naive_row = naive(port, size)
                rows = [r for r in (raw_row, naive_row) if r]
                rows.append(
                    dripcourse(port, size, f"sqlite:///{workdir / f'bench-{size}.db'}", extra)
                )
                if args.postgres:
                    rows.extend(on_postgres(port, size, args.postgres))
            print(f"\nN = {size:,} (sink: {kind}; {os.cpu_count()} cores)\n")
            print(table(rows, naive_row, raw_row))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
