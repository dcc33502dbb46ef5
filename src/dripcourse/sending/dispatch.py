"""One dispatch pass: materialise what is due, claim a batch, render, deliver, record each outcome.

No transaction stays open across network I/O: the claim is one short transaction, sending happens
outside any, and the outcomes of each group of messages (`send_group`, default 100) are written in
one short transaction right after the server's answers. A crash can therefore repeat at most one
group of the crashed worker (the messages sent but not yet recorded); their lease expires and another
pass sends them again: at-least-once, with that bounded window. The group prepared ahead (claimed
and built, in `preparation.py`, while this one is sent) was not sent: its lease expires and it goes
out once, later.

A large backlog is shared by several worker processes (`workers`); they coordinate only through
the database, exactly as separate `dripcourse run` processes do.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.pool
import os
import pickle
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from dripcourse.backends import load_backend
from dripcourse.backends.base import (
    DeliveryBackend,
    DeliveryResult,
    Outcome,
    OutgoingMessage,
    send_each_ready,
)
from dripcourse.clock import Clock, FixedClock, SystemClock
from dripcourse.config import Settings
from dripcourse.domain.delivery import Job
from dripcourse.sending.outcomes import record_outcomes
from dripcourse.sending.preparation import Preparation, ReadyGroup, reason
from dripcourse.sending.webhooks import WebhookReport, deliver_due
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, DeliveryStatus, Enrollment, EnrollmentStatus
from dripcourse.telemetry.metrics import record_message, record_pass

log = logging.getLogger(__name__)

MAX_AUTO_WORKERS = 4


@dataclass(frozen=True, slots=True)
class Sent:
    """One message's fate in a pass, for `tick` to print."""

    at: datetime
    email: str
    course: str
    kind: str
    lesson: str | None
    number: int | None
    status: str
    detail: str = ""


@dataclass
class PassReport:
    materialised: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    """Messages by their new status (sent, pending: to retry, failed, cancelled)."""
    webhooks: WebhookReport = field(default_factory=WebhookReport)

    def count(self, status: str) -> int:
        return self.counts[status]


class Dispatcher:
    """Runs passes for one worker. Settings, database and backend are given, never global."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        backend: DeliveryBackend,
        clock: Clock,
        stop: threading.Event | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.backend = backend
        self.clock = clock
        self.stop = stop or threading.Event()
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._preparation = Preparation(database, settings, clock, self.worker)
        self._pacer = Pacer(settings.max_rate)

    def run_pass(
        self, on_outcome: Callable[[Sent], None] | None = None, workers: int | None = None
    ) -> PassReport:
        """Put what is due into the ledger and send it, until nothing is left to do.

        A backlog of several batches is shared with helper processes that do the same.
        """
        started = time.perf_counter()
        helpers = self._helpers_for(workers)
        with ProcessPool(helpers, self.settings, self.clock, print_outcomes=on_outcome) as pool:
            report = self.drain(on_outcome, share=helpers + 1)
            for other in pool.results():
                report.materialised += other.materialised
                report.counts.update(other.counts)
        # The events this pass wrote (lesson.sent...) go out in the same pass, from this process.
        report.webhooks = deliver_due(self.database, self.clock, self.worker, stop=self.stop)
        record_pass(time.perf_counter() - started)
        log.info(
            "pass done: %d owed, %d sent, %d to retry, %d failed, %d cancelled",
            report.materialised,
            report.count("sent"),
            report.count("pending"),
            report.count("failed"),
            report.count("cancelled"),
        )
        return report

    def drain(self, on_outcome: Callable[[Sent], None] | None = None, share: int = 1) -> PassReport:
        """Materialise, claim, send and record, group by group, until nothing is left (or we are
        told to stop). Several processes may drain the same database at once.

        The next group is prepared (`preparation.py`) in a thread of its own while this one sends
        and records the group before it.
        """
        self._pacer = Pacer(self.settings.max_rate / share)
        report = PassReport()
        materialised_before = self._preparation.materialised
        if self.stop.is_set():
            return report
        with ExitStack() as stack:
            ahead = stack.enter_context(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="dripcourse-prepare")
            )
            upcoming, overlapped = ahead.submit(self._preparation.next_group), False
            opened = False
            while True:
                group = upcoming.result()
                if group is None:
                    if not overlapped:
                        break
                    # "Nothing left" was found while the last group was being recorded, which may
                    # have made something due: look once more, now that nothing else runs.
                    upcoming, overlapped = ahead.submit(self._preparation.next_group), False
                    continue
                if self.stop.is_set():
                    self._preparation.release_claimed([group])
                    break
                upcoming, overlapped = ahead.submit(self._preparation.next_group), True
                if group.jobs and not opened:
                    # One SMTP connection, opened only when there is something to send, and
                    # closed (QUIT) when the pass ends. (An ExitStack is always true: test a flag.)
                    stack.enter_context(self.backend)
                    opened = True
                for outcome in self._deliver(group):
                    report.counts[outcome.status] += 1
                    record_message(outcome.course, outcome.status)
                    if on_outcome is not None:
                        on_outcome(outcome)
        report.materialised = self._preparation.materialised - materialised_before
        return report

    def _helpers_for(self, workers: int | None) -> int:
        """Extra processes worth starting: only for a backlog of several batches."""
        wanted = workers if workers is not None else self.settings.workers
        if wanted == 0:
            wanted = min(os.cpu_count() or 1, MAX_AUTO_WORKERS)
        if self.settings.max_connections:
            wanted = min(wanted, self.settings.max_connections)
        if wanted <= 1:
            return 0
        now = self.clock.now()
        with self.database.transaction() as session:
            due = session.scalar(
                select(func.count())
                .select_from(Enrollment)
                .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at <= now)
            )
            waiting = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
            )
        backlog = (due or 0) + (waiting or 0)
        return max(0, min(wanted, backlog // (2 * self.settings.batch_size)) - 1)

    def _deliver(self, group: ReadyGroup) -> Iterator[Sent]:
        """Send one ready group and record what became of each message."""
        for job in group.cancelled:
            yield self._sent(job, "cancelled", "unsubscribed or suppressed")
        if not group.jobs:
            return
        self._pacer.wait(len(group.jobs))
        results = self._send(group.built)
        courses = {job.course_id for job in group.jobs}
        facts = {cid: self._preparation.facts(cid) for cid in courses}
        with self.database.transaction() as session:
            statuses = record_outcomes(
                session,
                list(zip(group.jobs, results, strict=True)),
                self.clock.now(),
                self.worker,
                self.settings.retry_policy,
                facts,
            )
        for job, result, status in zip(group.jobs, results, statuses, strict=True):
            yield self._sent(job, status, result.detail)

    def _send(self, built: Sequence[OutgoingMessage | DeliveryResult]) -> list[DeliveryResult]:
        """Hand the group's buildable messages to the backend at once.

        A backend that raises (against its contract) gets each message again on its own, so
        that only the one it cannot take fails.
        """
        try:
            return send_each_ready(built, self.backend.send)
        except Exception:
            log.exception(
                "%r raised while sending a group; sending its messages one by one", self.backend
            )
        return [send_each_ready([item], self._send_alone)[0] for item in built]

    def _send_alone(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        try:
            return self.backend.send(messages)
        except Exception as exc:
            log.exception("%r cannot send delivery %s", self.backend, messages[0].key)
            detail = f"the backend failed: {reason(exc)}"
            return [
                DeliveryResult(message.key, Outcome.UNSENDABLE, detail=detail)
                for message in messages
            ]

    def _sent(self, job: Job, status: str, detail: str) -> Sent:
        view = self._preparation.view(job.course_id)
        number = None
        if job.lesson_key is not None:
            number = view.renderer.lesson(job.lesson_key).number
        return Sent(
            at=self.clock.now(),
            email=job.email,
            course=view.slug,
            kind=job.kind,
            lesson=job.lesson_key,
            number=number,
            status=status,
            detail=detail,
        )


class Pacer:
    """Keeps sending under `rate` messages per second (0: no limit), as providers demand."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    def wait(self, messages: int) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        self._next = max(self._next, now) + messages * self.interval


class ProcessPool:
    """Helper processes that drain the ledger beside this one (spawned: no state is shared)."""

    def __init__(
        self,
        size: int,
        settings: Settings,
        clock: Clock,
        print_outcomes: Callable[[Sent], None] | None,
    ) -> None:
        self.size = size
        fixed = clock.now() if isinstance(clock, FixedClock) else None
        self._args = (settings, fixed, _picklable(print_outcomes))
        self._pool: multiprocessing.pool.Pool | None = None
        self._pending: list[multiprocessing.pool.AsyncResult[PassReport]] = []

    def __enter__(self) -> ProcessPool:
        if self.size:
            self._pool = multiprocessing.get_context("spawn").Pool(self.size)
            self._pending = [
                self._pool.apply_async(_drain_in_helper, (*self._args, self.size + 1))
                for _ in range(self.size)
            ]
        return self

    def results(self) -> list[PassReport]:
        return [pending.get() for pending in self._pending]

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()


def _picklable(
    on_outcome: Callable[[Sent], None] | None,
) -> Callable[[Sent], None] | None:
    """The caller's `on_outcome` if a helper process can be handed it (a module-level function,
    such as the CLI's printer: helpers then print as `tick` does), else None."""
    try:
        pickle.dumps(on_outcome)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    return on_outcome


def _drain_in_helper(
    settings: Settings,
    fixed_now: datetime | None,
    on_outcome: Callable[[Sent], None] | None,
    share: int,
) -> PassReport:
    database = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    clock: Clock = FixedClock(fixed_now) if fixed_now is not None else SystemClock()
    dispatcher = Dispatcher(database, settings, load_backend(settings.email_backend), clock)
    try:
        return dispatcher.drain(on_outcome, share=share)
    finally:
        database.dispose()
