"""`bench/dashboard.py` runs on a small list and prints its table (the full-size run is a
benchmark, measured by hand and quoted in docs/performance.md, never part of the tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_dashboard_bench_builds_a_small_list_and_times_every_page(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "dashboard.py"),
        *("--subscribers", "300", "--deliveries", "2000", "--requests", "2"),
        *("--cache", str(tmp_path)),
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "300 subscribers" in first.stdout
    assert "| page or operation | median ms | p95 ms | note |" in first.stdout
    timed = [line for line in first.stdout.splitlines() if line.startswith("| overview: `/admin/`")]
    assert len(timed) == 1 and "404" not in timed[0]
    assert "| search by name (prefix): `/admin/subscribers?q=émi`" in first.stdout
    assert "| `report.course_report`, one course (runners) |" in first.stdout

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "using the cached" in again.stdout
