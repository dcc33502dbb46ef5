"""`dripcourse run`: APScheduler wiring around the dispatcher.

The dispatch job runs on an interval, coalesced and never two at once; housekeeping (given by the
shell) runs daily. The
database decides who sends what, so the scheduler is only a wake-up: any number of processes may run.
SIGINT and SIGTERM let the message in flight finish, then the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.sending.dispatch import Dispatcher

log = logging.getLogger(__name__)

DISPATCH_JOB = "dispatch"


class Scheduler:
    """The APScheduler jobs of one process: dispatch on an interval, housekeeping daily."""

    def __init__(
        self,
        settings: Settings,
        dispatcher: Dispatcher,
        clock: Clock,
        housekeeping: Callable[[], object],
    ) -> None:
        """`housekeeping` is the daily job (`app.housekeeping.daily`), given by the shell that
        runs the process: what it removes is the operations' business, not the engine's."""
        self.dispatcher = dispatcher
        self._wake_lock = threading.Lock()
        self._passing = False
        self._woken = False
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._dispatch,
            "interval",
            seconds=settings.dispatch_interval,
            id=DISPATCH_JOB,
            coalesce=True,
            max_instances=1,
            next_run_time=clock.now(),
        )
        self._scheduler.add_job(
            housekeeping,
            "cron",
            hour=3,
            minute=17,
            id="housekeeping",
            coalesce=True,
            max_instances=1,
        )

    def start(self) -> None:
        self._scheduler.start()

    def alive(self) -> bool:
        """Whether the scheduler's thread runs (for `/readyz` of the process that holds it)."""
        return bool(self._scheduler.running)

    def wake(self) -> None:
        """Run a dispatch pass now (a confirmation email was just queued), not at the next interval.

        APScheduler skips a run while the job is still running (`max_instances=1`), so a wake that
        comes during a pass is noted instead, and the running job makes one more pass when it
        ends; any number of wakes during a pass coalesce into that one."""
        with self._wake_lock:
            self._woken = True
            if self._passing:
                return
        if self._scheduler.running:
            self._scheduler.modify_job(DISPATCH_JOB, next_run_time=datetime.now(UTC))

    def _dispatch(self) -> None:
        """The dispatch job: a pass, and another as long as wakes came in during the last one."""
        with self._wake_lock:
            self._passing, self._woken = True, False
        try:
            while True:
                try:
                    self.dispatcher.run_pass()
                except Exception:
                    # Every message fails alone inside a pass; this is whatever is left (the
                    # database went away). The next interval tries again.
                    log.exception("dispatch pass failed; the next one runs as scheduled")
                    with self._wake_lock:
                        self._passing = False
                    return
                with self._wake_lock:
                    # Decided under the lock, so that a wake sees either a pass still to come or
                    # no pass running (and then schedules one itself).
                    if not self._woken or self.dispatcher.stop.is_set():
                        self._passing = False
                        return
                    self._woken = False
        except BaseException:
            with self._wake_lock:
                self._passing = False
            raise

    def shutdown(self) -> None:
        """Let the message in flight finish, then stop."""
        self.dispatcher.stop.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


def run_forever(scheduler: Scheduler) -> None:
    """Block until SIGINT/SIGTERM, dispatching on the scheduler's interval."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the message in flight", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped cleanly")
