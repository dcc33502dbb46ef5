"""The folder where every process of one deployment writes its counts, so that `/metrics` in the
web process adds up those of the workers, of `dripcourse tick` and of the dispatcher's helpers.

prometheus_client's multiprocess mode keeps each process's counts in files named by its pid
(`counter_<pid>.db`) in `PROMETHEUS_MULTIPROC_DIR`, and adds up every file at each scrape. The
variable must be set before the library is imported in a process: the command line calls
`prepare` at start-up (children inherit it), and `metrics` imports the library on first use.

Which folder: `DRIPCOURSE_METRICS_DIR`, else one per database, so that two deployments on one
machine never mix their counts: `<file>-metrics/` beside an SQLite file (as its `-writers.lock`),
else `dripcourse-metrics-<uid>-<hash of the URL>` in the temporary folder (the hash, not the URL:
it may hold a password). Every process of a deployment must see the same folder (systemd's
`PrivateTmp` gives each unit its own /tmp: set the variable there; see deploy/).

A process that ended leaves its files behind, and they must keep counting (a `tick` run by cron,
a helper of a large pass). `sweep`, run when `serve` and `run` start, folds the counters and
histograms of dead pids into one `<kind>_archive.db` file each, and removes the live gauges of
dead pids (`multiprocess.mark_process_dead`), so that the folder does not grow with every run.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dripcourse.config import Settings
from dripcourse.errors import BadInput

ENV = "PROMETHEUS_MULTIPROC_DIR"
ARCHIVE = "archive"
_FOLDED_KINDS = ("counter", "histogram")


def folder_for(settings: Settings) -> Path:
    """The folder of this deployment's counts (see the module docstring)."""
    if settings.metrics_dir is not None:
        return settings.metrics_dir
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        url = None
    if (
        url is not None
        and url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and url.query.get("uri") not in ("true", "1")
    ):
        return Path(f"{url.database}-metrics")
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"dripcourse-metrics-{os.geteuid()}-{digest}"


def prepare(settings: Settings) -> Path | None:
    """Point prometheus_client at this deployment's folder; call before anything is counted. The
    folder is made at the first count (`ensure_current`), or checked at once by `claim`."""
    path = folder_for(settings).absolute()
    if "prometheus_client" in sys.modules and current() != path:
        # Too late for this process (a program that runs several commands in one, as tests do):
        # the library chose where counts go when it was imported. Say where they really go.
        return current()
    os.environ[ENV] = str(path)
    return path


def claim() -> Path | None:
    """For a process that runs for long (`serve`, `run`): the current folder made and checked
    now, so that a folder that cannot be used is one clear line at start-up, and the files of
    processes that have ended folded (`sweep`)."""
    path = current()
    if path is not None:
        make_private_folder(path)
        sweep(path)
    return path


def current() -> Path | None:
    """The folder this process counts into, or None: counts stay in this process."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def ensure_current() -> None:
    """The current folder exists (prometheus_client would fail at the first count otherwise)."""
    path = current()
    if path is not None and not path.is_dir():
        make_private_folder(path)


def make_private_folder(path: Path) -> None:
    """`BadInput` if the folder cannot be made, belongs to someone else or others may write in
    it: they could forge our counts."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise BadInput(f"metrics folder {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise BadInput(f"metrics folder {path} is not a folder")
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BadInput(
            f"metrics folder {path} belongs to another user or others may write in it; "
            "set DRIPCOURSE_METRICS_DIR to a folder of your own"
        )


def sweep(path: Path) -> int:
    """Fold the files of processes that have ended into the archive files; the number of pids
    folded. Several processes may start at once: they take turns on a lock file."""
    import fcntl

    multiprocess = _untyped("prometheus_client.multiprocess")

    with open(path / ".sweep.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dead = sorted({pid for pid in map(_pid_of, path.glob("*.db")) if pid and not _alive(pid)})
        for pid in dead:
            multiprocess.mark_process_dead(pid, str(path))
        for kind in _FOLDED_KINDS:
            files = [str(path / f"{kind}_{pid}.db") for pid in dead]
            files = [name for name in files if os.path.exists(name)]
            if files:
                _fold(path, kind, files)
    return len(dead)


def _fold(path: Path, kind: str, files: list[str]) -> None:
    """Add `files` into `<kind>_archive.db`, then remove them. The new archive is written under a
    name the collector does not read (`.tmp`) and moved into place."""
    mmap_dict = _untyped("prometheus_client.mmap_dict")
    collector = _untyped("prometheus_client.multiprocess").MultiProcessCollector

    archive = path / f"{kind}_{ARCHIVE}.db"
    sources = [*files, str(archive)] if archive.exists() else files
    merged = collector.merge(sources, accumulate=False)
    scratch = path / f"{kind}_{ARCHIVE}.tmp"
    scratch.unlink(missing_ok=True)
    written = mmap_dict.MmapedDict(str(scratch))
    try:
        for metric in merged:
            for sample in metric.samples:
                names, values = list(sample.labels), list(sample.labels.values())
                key = mmap_dict.mmap_key(
                    metric.name, sample.name, names, values, metric.documentation
                )
                written.write_value(key, sample.value, 0.0)
    finally:
        written.close()
    os.replace(scratch, archive)
    for name in files:
        os.unlink(name)


def _untyped(module: str) -> Any:
    """A module of prometheus_client whose functions carry no type annotations."""
    return importlib.import_module(module)


def _pid_of(file: Path) -> int | None:
    """`counter_4242.db` -> 4242, `gauge_livesum_4242.db` -> 4242; the archive -> None."""
    last = file.stem.rsplit("_", 1)[-1]
    return int(last) if last.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
