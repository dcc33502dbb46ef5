"""CSV imports started from the dashboard, run by a thread of their own so that the browser can
watch a large file go through (`/admin/imports/{id}`) instead of waiting on one long request.

The upload is first copied into a private temporary folder (`store/privatefiles`), checked to be
UTF-8 text as it is copied; the thread then reads it through `app/roster.read_rows` into
`app/roster.import_subscribers`, the operation of `dripcourse subscribers import`, in one
transaction: a file that turns out not to be a usable CSV, even on its last line, leaves nothing
written. The folder is removed when the job ends, whatever the ending. A job's id is a random
token (`secrets.token_urlsafe`); finished jobs are kept for an hour, in this process only.
"""

from __future__ import annotations

import codecs
import io
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from secrets import token_urlsafe
from typing import BinaryIO

from dripcourse.app import roster
from dripcourse.clock import Clock
from dripcourse.errors import BadInput, Conflict, DripcourseError
from dripcourse.store.db import Database
from dripcourse.store.privatefiles import open_private

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""About 100,000 rows of address, name and zone: a file larger than that is cut up first."""
TOO_LARGE = (
    f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, the most one import takes; "
    "split it into smaller files and import them one by one"
)
KEPT_FOR = timedelta(hours=1)
COPY_CHUNK = 64 * 1024


class UploadRefused(BadInput):
    """The uploaded file cannot be imported at all; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ImportJob:
    id: str
    file_name: str
    course: str
    confirmed: bool
    size: int
    started_at: datetime
    rows: int = 0
    """Rows read so far (the `progress` callback of the import)."""
    bytes_read: int = 0
    report: roster.ImportReport | None = None
    failure: str = ""
    finished_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        if not self.running:
            return 100
        return min(99, self.bytes_read * 100 // max(1, self.size))

    def advance(self, rows: int) -> None:
        self.rows += rows


@dataclass
class ImportJobs:
    """The imports of this server process, by id. One runs at a time: an import holds the write
    transaction for its whole length, and two would only queue behind each other."""

    _jobs: dict[str, ImportJob] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(
        self,
        upload: BinaryIO,
        file_name: str,
        *,
        course: str,
        confirmed: bool,
        actor: str,
        database: Database,
        clock: Clock,
        wake: Callable[[], None],
    ) -> ImportJob:
        """Copy `upload` into a private temporary file and import it in a new thread. Refused
        (`UploadRefused`, nothing started) when the file is empty, too large or not UTF-8 text;
        `Conflict` when another import is still running."""
        now = clock.now()
        folder = Path(tempfile.mkdtemp(prefix="dripcourse-import-"))  # 0700
        try:
            path = folder / "upload.csv"
            size = _copy_checked(upload, path)
            with self._lock:
                self._forget_old(now)
                if any(job.running for job in self._jobs.values()):
                    raise Conflict(
                        "another import is still running; wait for it to finish, then try again"
                    )
                job = ImportJob(
                    id=token_urlsafe(24),
                    file_name=file_name,
                    course=course,
                    confirmed=confirmed,
                    size=size,
                    started_at=now,
                )
                self._jobs[job.id] = job
                worker = threading.Thread(
                    target=_run,
                    args=(job, path, folder, actor, database, clock, wake),
                    name=f"import {job.id[:8]}",
                    daemon=True,
                )
                worker.start()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job

    def _forget_old(self, now: datetime) -> None:
        for job_id, job in list(self._jobs.items()):
            if job.finished_at is not None and now - job.finished_at > KEPT_FOR:
                del self._jobs[job_id]


def _copy_checked(upload: BinaryIO, path: Path) -> int:
    """Copy the upload into the private file `path`, checking on the way that it is UTF-8 text
    (the command line's rule: `read_text(encoding="utf-8-sig")`) with no NUL byte (no text file
    has one; a binary file nearly always does). The size in bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    with open_private(path) as copy:
        while chunk := upload.read(COPY_CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise UploadRefused(TOO_LARGE, 413)
            if b"\0" in chunk:
                raise UploadRefused("the file has NUL bytes: it is not a CSV text file")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                raise UploadRefused(
                    "the file is not UTF-8 text; save it as “CSV UTF-8” and upload it again"
                ) from None
            copy.write(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UploadRefused(
            "the file is not UTF-8 text: it ends in the middle of a character"
        ) from None
    if size == 0:
        raise UploadRefused("the file is empty; choose a CSV file with a header row")
    return size


class _Counted(io.RawIOBase):
    """The temporary file, counting the bytes the CSV reader has taken (the progress shown)."""

    def __init__(self, raw: BinaryIO, job: ImportJob) -> None:
        self.raw = raw
        self.job = job

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.job.bytes_read += len(data)
        return len(data)


def _run(
    job: ImportJob,
    path: Path,
    folder: Path,
    actor: str,
    database: Database,
    clock: Clock,
    wake: Callable[[], None],
) -> None:
    try:
        # Read and checked before the transaction opens: checking every address is most of the
        # work, and the server's other writers (sign-ups, unsubscribes, the dispatcher) would
        # wait for all of it. The upload is capped, so its rows fit in memory.
        with path.open("rb") as raw:
            text = io.TextIOWrapper(
                io.BufferedReader(_Counted(raw, job)), encoding="utf-8-sig", newline=""
            )
            rows = list(roster.read_rows(text))
        with database.transaction() as session:
            report = roster.import_subscribers(
                session,
                rows,
                job.course,
                clock.now(),
                confirmed=job.confirmed,
                progress=job.advance,
                actor=actor,
                file_name=job.file_name,
            )
        job.report = report  # only once committed
    except DripcourseError as exc:
        job.failure = str(exc)
    except Exception:
        # The one broad catch: nobody is waiting on this thread to see the error, and a job left
        # "running" would keep its page refreshing for ever. The transaction rolled back.
        log.exception("the import %s of %r failed", job.id[:8], job.file_name)
        job.failure = "the import stopped on an unexpected error (see the server's log)"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        job.finished_at = clock.now()
    if job.report is not None and job.report.imported and not job.confirmed:
        wake()  # the confirmation emails are due now
