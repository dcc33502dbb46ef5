"""One dispatch pass: materialise what is due, claim a batch, render, deliver, record each outcome.

No transaction stays open across network I/O: the claim is one short transaction, sending happens
outside any, and each message's outcome is written in its own short transaction right after the
server's answer. A crash can therefore repeat at most the one message whose answer was not yet
recorded; its lease expires and another pass sends it again (at-least-once, window of one message).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from dripcourse.backends.base import DeliveryBackend, DeliveryResult, Outcome
from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.db import Database
from dripcourse.ledger import (
    Job,
    cancel,
    claim,
    materialise_due,
    record,
    release,
    still_wanted,
)
from dripcourse.messages import CourseView, MessageBuilder
from dripcourse.models import Course
from dripcourse.tokens import Signer, secret_key

log = logging.getLogger(__name__)

SEND_CHUNK = 20
"""Messages sent between two checks for unsubscribes that arrived after the claim."""


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
    outcomes: list[Sent] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


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

    def run_pass(self, on_outcome: Callable[[Sent], None] | None = None) -> PassReport:
        report = PassReport()
        now = self.clock.now()
        while not self.stop.is_set():
            with self.database.transaction() as session:
                handled = materialise_due(session, now, self.settings.batch_size)
            report.materialised += handled
            if handled < self.settings.batch_size:
                break
        courses: dict[int, CourseView] = {}
        jobs = self._claim(courses)
        if jobs:
            # The backend (one SMTP connection) is opened only when there is something to send.
            with self.backend:
                while jobs:
                    for outcome in self._deliver(jobs, courses):
                        report.outcomes.append(outcome)
                        if on_outcome is not None:
                            on_outcome(outcome)
                    jobs = [] if self.stop.is_set() else self._claim(courses)
        log.info(
            "pass done: %d owed, %d sent, %d to retry, %d failed, %d cancelled",
            report.materialised,
            report.count("sent"),
            report.count("pending"),
            report.count("failed"),
            report.count("cancelled"),
        )
        return report

    def _claim(self, courses: dict[int, CourseView]) -> list[Job]:
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
                signer = Signer(secret_key(session, self.settings.secret_key))
                self._builder = MessageBuilder(signer, self.settings.base_url)
            missing = {job.course_id for job in jobs} - set(courses)
            for course in session.scalars(
                select(Course).where(Course.id.in_(missing)).options(selectinload(Course.lessons))
            ):
                courses[course.id] = CourseView.of(course)
        return jobs

    def _deliver(self, jobs: Sequence[Job], courses: dict[int, CourseView]) -> Iterator[Sent]:
        for start in range(0, len(jobs), SEND_CHUNK):
            chunk = jobs[start : start + SEND_CHUNK]
            with self.database.transaction() as session:
                wanted = still_wanted(session, chunk)
                for job in chunk:
                    if job.delivery_id not in wanted:
                        cancel(session, job, "unsubscribed or suppressed before sending")
            for offset, job in enumerate(chunk):
                view = courses[job.course_id]
                if job.delivery_id not in wanted:
                    yield self._sent(job, view, "cancelled", "unsubscribed or suppressed")
                    continue
                if self.stop.is_set():
                    self._release(jobs[start + offset :])
                    return
                result = self._send_one(job, view)
                with self.database.transaction() as session:
                    status = record(
                        session,
                        job,
                        result,
                        self.clock.now(),
                        self.worker,
                        self.settings.retry_policy,
                    )
                yield self._sent(job, view, status, result.detail)

    def _release(self, jobs: Sequence[Job]) -> None:
        with self.database.transaction() as session:
            release(session, jobs, self.worker)
        log.info("stopping: handed back %d claimed message(s) not yet sent", len(jobs))

    def _send_one(self, job: Job, view: CourseView) -> DeliveryResult:
        assert self._builder is not None
        try:
            message = self._builder.build(job, view, self.clock.now())
        except (jinja2.TemplateError, LookupError) as exc:
            log.error("cannot render delivery %d: %s", job.delivery_id, exc)
            return DeliveryResult(
                str(job.delivery_id), Outcome.TEMPORARY, detail=f"render failed: {exc}"
            )
        return self.backend.send([message])[0]

    def _sent(self, job: Job, view: CourseView, status: str, detail: str) -> Sent:
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
