"""Getting the next group of messages ready: materialise what is due, claim a batch, check each
group right before it goes, and build its messages.

This is the half of a dispatch pass that does not talk to the mail server. `dispatch.Dispatcher`
runs it one group ahead, in a thread of its own, so that a group is claimed, checked and built
while the one before it is on the wire and being recorded: each side's waits (for the database
server, for the mail server's replies, for SQLite's write lock held by another worker) are spent
on the other side's work instead of idling. Only one preparation runs at a time, and every call
returns before the next is asked for, so the state kept here needs no lock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from dripcourse.backends.base import DeliveryResult, Outcome, OutgoingMessage
from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.domain.delivery import Job
from dripcourse.mail.builder import CourseView, MessageBuilder
from dripcourse.sending.ledger import cancel, claim, materialise_due, release, still_wanted
from dripcourse.sending.outcomes import CourseFacts
from dripcourse.store.db import Database
from dripcourse.store.models import Course
from dripcourse.store.queries import secret_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadyGroup:
    """A group of claimed deliveries as it leaves preparation."""

    jobs: list[Job]
    """The deliveries still wanted, in claim order."""
    built: list[OutgoingMessage | DeliveryResult]
    """One per job: its finished message, or the result of a message that could not be built."""
    cancelled: list[Job]
    """Claimed, but unsubscribed or suppressed since: cancelled in the ledger, not to be sent."""


class Preparation:
    """One worker's supply of ready groups; see the module docstring."""

    def __init__(self, database: Database, settings: Settings, clock: Clock, worker: str) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.worker = worker
        self.materialised = 0
        """Due enrolments handled so far (see `ledger.materialise_due`)."""
        self._claimed: deque[list[Job]] = deque()
        self._builder: MessageBuilder | None = None
        self._courses: dict[int, tuple[CourseView, CourseFacts]] = {}

    def next_group(self) -> ReadyGroup | None:
        """The next group to send; None when nothing is due or claimable any more.

        A group whose every delivery was cancelled comes back too (with no jobs), so that the
        caller can report the cancellations.
        """
        while not self._claimed:
            now = self.clock.now()
            with self.database.transaction() as session:
                owed = materialise_due(session, now, self.settings.batch_size)
            self.materialised += owed
            jobs = self._claim()
            if not jobs and not owed:
                return None
            size = max(1, self.settings.send_group)
            self._claimed.extend(jobs[start : start + size] for start in range(0, len(jobs), size))
        return self._ready(self._claimed.popleft())

    def release_claimed(self, groups: Sequence[ReadyGroup] = ()) -> None:
        """Hand back what was claimed and not sent (the worker is stopping), so that it need not
        wait for its lease to expire: `groups` already prepared, and every group not yet."""
        jobs = [job for group in groups for job in group.jobs]
        jobs += [job for group in self._claimed for job in group]
        self._claimed.clear()
        if not jobs:
            return
        with self.database.transaction() as session:
            release(session, jobs, self.worker)
        log.info("stopping: handed back %d claimed message(s) not yet sent", len(jobs))

    def view(self, course_id: int) -> CourseView:
        return self._courses[course_id][0]

    def facts(self, course_id: int) -> CourseFacts:
        return self._courses[course_id][1]

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
            builder = self._builder
            missing = {job.course_id for job in jobs} - set(self._courses)
            known = select(Course).where(Course.id.in_(missing))
            for course in (
                session.scalars(known.options(selectinload(Course.lessons))) if missing else ()
            ):
                view = CourseView.of(course, builder.media_root)
                current = [each.key for each in course.current_lessons]
                self._courses[course.id] = (view, CourseFacts.of(course.settings, current))
        return jobs

    def _ready(self, group: list[Job]) -> ReadyGroup:
        # Checked as late as this worker can: an unsubscribe or a suppression that arrived after
        # the claim is honoured.
        with self.database.read() as session:
            wanted = still_wanted(session, group)
        cancelled = [job for job in group if job.delivery_id not in wanted]
        if cancelled:
            with self.database.transaction() as session:
                for job in cancelled:
                    cancel(session, job, "unsubscribed or suppressed before sending")
        sendable = [job for job in group if job.delivery_id in wanted]
        now = self.clock.now()
        return ReadyGroup(sendable, [self._build(job, now) for job in sendable], cancelled)

    def _build(self, job: Job, now: datetime) -> OutgoingMessage | DeliveryResult:
        """A poison message fails alone: whatever goes wrong while building one is its result."""
        assert self._builder is not None
        key = str(job.delivery_id)
        try:
            return self._builder.build(job, self.view(job.course_id), now)
        except jinja2.TemplateError as exc:
            # The author can mend a template, so the message waits and is tried again.
            log.error("cannot render delivery %d: %s", job.delivery_id, exc)
            return DeliveryResult(key, Outcome.TEMPORARY, detail=f"render failed: {exc}")
        except Exception as exc:
            log.exception("cannot build delivery %d", job.delivery_id)
            return DeliveryResult(key, Outcome.UNSENDABLE, detail=f"cannot build: {reason(exc)}")


def reason(exc: Exception) -> str:
    """An exception in a few words, for the delivery's last_error."""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
