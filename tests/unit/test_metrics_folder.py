"""The multiprocess folder: one per database, private; the files of processes that have ended are
folded into archive files by `sweep` without changing any total (prometheus_client's own
collector reads them before and after), and the folder stops growing with every run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from dripcourse.config import Settings
from dripcourse.errors import BadInput
from dripcourse.telemetry import folder

COUNT = """
from dripcourse.telemetry import metrics
for _ in range({n}):
    metrics.record_message("runners", "sent")
metrics.record_pass(0.3)
metrics.metrics().webhook_deliveries.labels(outcome="failed").inc()
"""


def count_in_a_process(path: Path, n: int) -> None:
    env = {**os.environ, folder.ENV: str(path)}
    subprocess.run([sys.executable, "-c", COUNT.format(n=n)], env=env, check=True, timeout=60)


def totals(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    collector = MultiProcessCollector(None, path=str(path))  # type: ignore[no-untyped-call]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()  # type: ignore[no-untyped-call]
        for sample in family.samples
    }


def test_dead_processes_are_folded_and_nothing_is_lost(tmp_path: Path) -> None:
    count_in_a_process(tmp_path, 2)
    count_in_a_process(tmp_path, 3)
    before = totals(tmp_path)
    assert before[("dripcourse_messages_total", (("course", "runners"), ("outcome", "sent")))] == 5
    assert folder.sweep(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    assert totals(tmp_path) == before
    count_in_a_process(tmp_path, 4)
    folder.sweep(tmp_path)
    after = totals(tmp_path)
    assert after[("dripcourse_messages_total", (("course", "runners"), ("outcome", "sent")))] == 9
    assert after[("dripcourse_pass_duration_seconds_count", ())] == 3
    assert after[("dripcourse_webhook_deliveries_total", (("outcome", "failed"),))] == 3


def test_a_live_process_keeps_its_file(tmp_path: Path) -> None:
    mine = tmp_path / f"counter_{os.getpid()}.db"
    count_in_a_process(tmp_path, 1)
    (tmp_path / next(p.name for p in tmp_path.glob("counter_*.db"))).rename(mine)
    folder.sweep(tmp_path)  # folds the dead process's histogram file, not this one's counter
    assert mine.exists()
    assert not (tmp_path / "counter_archive.db").exists()


def test_one_folder_per_database(tmp_path: Path) -> None:
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}")
    assert folder.folder_for(sqlite) == Path(f"{tmp_path / 'a.db'}-metrics")
    one = Settings(database_url="postgresql+psycopg://u:secret-pw@db/one")
    two = Settings(database_url="postgresql+psycopg://u:secret-pw@db/two")
    assert folder.folder_for(one) != folder.folder_for(two)
    assert "secret-pw" not in str(folder.folder_for(one))
    given = Settings(database_url=one.database_url, metrics_dir=tmp_path / "m")
    assert folder.folder_for(given) == tmp_path / "m"


def test_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(BadInput, match="another user or others may write"):
        folder.make_private_folder(shared)
    folder.make_private_folder(tmp_path / "new")
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
