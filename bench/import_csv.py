"""`dripcourse subscribers import` of a large CSV, timed as a whole process.

python bench/import_csv.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRIPCOURSE = str(Path(sys.executable).with_name("dripcourse"))
ZONES = ["America/Toronto", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dripcourse-import-"))
    csv_file = folder / "people.csv"
    with csv_file.open("w", encoding="utf-8") as out:
        out.write("email,name,timezone\n")
        for n in range(args.rows):
            out.write(f"person{n}@example.com,Person {n},{ZONES[n % len(ZONES)]}\n")
    env = {
        **os.environ,
        "DRIPCOURSE_DATABASE_URL": f"sqlite:///{folder / 'import.db'}",
        "DRIPCOURSE_COURSES_DIR": str(HERE.parent / "emails"),
    }
    for step in (["db", "upgrade"], ["courses", "sync"]):
        subprocess.run([DRIPCOURSE, *step], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    done = subprocess.run(
        [DRIPCOURSE, "subscribers", "import", str(csv_file), "--course", "runners", "--confirmed"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    print(
        f"imported {args.rows:,} rows in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s): "
        f"{done.stdout.strip()}"
    )


if __name__ == "__main__":
    main()
