"""One dispatch pass: materialise what is due, claim a batch, render, deliver, record each outcome.

No transaction stays open across network I/O: the claim is one short transaction, sending happens
outside any, and the outcomes of each group of messages (`send_group`, default 100) are written in
one short transaction right after the server's answers. A crash can therefore repeat at most one
group of the crashed worker (the messages sent but not yet recorded); their lease expires and another
pass sends them again: at-least-once, with that bounded window.

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
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jinja2
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

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
from dripcourse.mail.builder import CourseView, MessageBuilder
from dripcourse.sending.ledger import cancel, claim, materialise_due, release, still_wanted
from dripcourse.sending.outcomes import CourseFacts, record_outcomes
from dripcourse.store.db import Database
from dripcourse.store.models import Course, Delivery, DeliveryStatus, Enrollment, EnrollmentStatus
from dripcourse.store.queries import secret_key

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
        self._builder: MessageBuilder | None = None
        self._courses: dict[int, tuple[CourseView, CourseFacts]] = {}
        self._pacer = Pacer(settings.max_rate)

    def run_pass(
        self, on_outcome: Callable[[Sent], None] | None = None, workers: int | None = None
    ) -> PassReport:
        """Put what is due into the ledger and send it, until nothing is left to do.

        A backlog of several batches is shared with helper processes that do the same.
        """
        helpers = self._helpers_for(workers)
        with ProcessPool(helpers, self.settings, self.clock, print_outcomes=on_outcome) as pool:
            report = self.drain(on_outcome, share=helpers + 1)
            for other in pool.results():
                report.materialised += other.materialised
                report.counts.update(other.counts)
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
        """Materialise, claim, send and record, batch by batch, until nothing is left (or we are
        told to stop). Several processes may drain the same database at once."""
        self._pacer = Pacer(self.settings.max_rate / share)
        report = PassReport()
        now = self.clock.now()
        with ExitStack() as backend:
            opened = False
            while not self.stop.is_set():
                with self.database.transaction() as session:
                    owed = materialise_due(session, now, self.settings.batch_size)
                report.materialised += owed
                jobs = self._claim()
                if not jobs and not owed:
                    break
                if jobs and not opened:
                    # One SMTP connection, opened only when there is something to send, and
                    # closed (QUIT) when the pass ends. (An ExitStack is always true: test a flag.)
                    backend.enter_context(self.backend)
                    opened = True
                for outcome in self._deliver(jobs):
                    report.counts[outcome.status] += 1
                    if on_outcome is not None:
                        on_outcome(outcome)
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

    def _claim(self) -> list[Job]:
        now = self.clock.now()
        with self.database.transaction() as session:
            jobs = claim(
                session,
                now,
                self.worker,
                self.settings.batch_size,
                timedelta(seconds=self.settings.lease_seconds),
            )
            if self._builder is None:
                key = secret_key(session, self.settings.secret_key)
                self._builder = MessageBuilder.for_sending(self.settings, key)
            missing = {job.course_id for job in jobs} - set(self._courses)
            known = select(Course).where(Course.id.in_(missing))
            for course in (
                session.scalars(known.options(selectinload(Course.lessons))) if missing else ()
            ):
                view = CourseView.of(course)
                current = [each.key for each in course.current_lessons]
                self._courses[course.id] = (view, CourseFacts.of(course.settings, current))
        return jobs

    def _deliver(self, jobs: Sequence[Job]) -> Iterator[Sent]:
        group_size = max(1, self.settings.send_group)
        for start in range(0, len(jobs), group_size):
            if self.stop.is_set():
                self._release(jobs[start:])
                return
            group = jobs[start : start + group_size]
            with self.database.read() as session:
                wanted = still_wanted(session, group)
            if len(wanted) < len(group):
                with self.database.transaction() as session:
                    for job in group:
                        if job.delivery_id not in wanted:
                            cancel(session, job, "unsubscribed or suppressed before sending")
            for job in group:
                if job.delivery_id not in wanted:
                    yield self._sent(job, "cancelled", "unsubscribed or suppressed")
            sendable = [job for job in group if job.delivery_id in wanted]
            if not sendable:
                continue
            self._pacer.wait(len(sendable))
            results = self._send(sendable)
            facts = {cid: self._courses[cid][1] for cid in {job.course_id for job in sendable}}
            with self.database.transaction() as session:
                statuses = record_outcomes(
                    session,
                    list(zip(sendable, results, strict=True)),
                    self.clock.now(),
                    self.worker,
                    self.settings.retry_policy,
                    facts,
                )
            for job, result, status in zip(sendable, results, statuses, strict=True):
                yield self._sent(job, status, result.detail)

    def _send(self, jobs: Sequence[Job]) -> list[DeliveryResult]:
        """Build every message of the group, then hand the buildable ones to the backend at once.

        A poison message fails alone: whatever goes wrong while building one is that delivery's
        result, and a backend that raises (against its contract) gets each message again on its own.
        """
        assert self._builder is not None
        now = self.clock.now()
        built = [self._build(job, now) for job in jobs]
        try:
            return send_each_ready(built, self.backend.send)
        except Exception:
            log.exception(
                "%r raised while sending a group; sending its messages one by one", self.backend
            )
        return [send_each_ready([item], self._send_alone)[0] for item in built]

    def _build(self, job: Job, now: datetime) -> OutgoingMessage | DeliveryResult:
        assert self._builder is not None
        key = str(job.delivery_id)
        try:
            return self._builder.build(job, self._courses[job.course_id][0], now)
        except jinja2.TemplateError as exc:
            # The author can mend a template, so the message waits and is tried again.
            log.error("cannot render delivery %d: %s", job.delivery_id, exc)
            return DeliveryResult(key, Outcome.TEMPORARY, detail=f"render failed: {exc}")
        except Exception as exc:
            log.exception("cannot build delivery %d", job.delivery_id)
            return DeliveryResult(key, Outcome.UNSENDABLE, detail=f"cannot build: {_reason(exc)}")

    def _send_alone(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        try:
            return self.backend.send(messages)
        except Exception as exc:
            log.exception("%r cannot send delivery %s", self.backend, messages[0].key)
            reason = f"the backend failed: {_reason(exc)}"
            return [
                DeliveryResult(message.key, Outcome.UNSENDABLE, detail=reason)
                for message in messages
            ]

    def _release(self, jobs: Sequence[Job]) -> None:
        with self.database.transaction() as session:
            release(session, jobs, self.worker)
        log.info("stopping: handed back %d claimed message(s) not yet sent", len(jobs))

    def _sent(self, job: Job, status: str, detail: str) -> Sent:
        view = self._courses[job.course_id][0]
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


def _reason(exc: Exception) -> str:
    """An exception in a few words, for the delivery's last_error."""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
