"""A wake-up (a confirmation email was just queued) is never lost: APScheduler skips a run of a job
that is still running, so a wake during a pass must make one more pass when that one ends."""

from __future__ import annotations

import threading
import time

from dripcourse.clock import SystemClock
from dripcourse.config import Settings
from dripcourse.sending.scheduler import Scheduler


class SlowDispatcher:
    """A dispatcher whose passes last until the test lets them end, counting them."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.passes = 0
        self.running = threading.Event()
        self.may_end = threading.Event()

    def run_pass(self) -> None:
        self.passes += 1
        self.running.set()
        self.may_end.wait(10)
        self.running.clear()


def wait_for(condition, seconds: float = 30.0) -> bool:
    # A guard against a hang on a loaded machine, not a measure of speed.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def scheduler_with(dispatcher: SlowDispatcher) -> Scheduler:
    # An hour between passes: any pass beyond the first comes from a wake.
    settings = Settings(dispatch_interval=3600)
    return Scheduler(settings, dispatcher, SystemClock(), housekeeping=lambda: 0)


def test_wakes_during_a_pass_make_exactly_one_more_pass() -> None:
    dispatcher = SlowDispatcher()
    scheduler = scheduler_with(dispatcher)
    scheduler.start()
    try:
        assert dispatcher.running.wait(30), "the first pass never started"
        for _ in range(3):
            scheduler.wake()
        time.sleep(0.3)  # APScheduler's own thread has seen the wakes while the pass still runs

        dispatcher.may_end.set()

        assert wait_for(lambda: dispatcher.passes == 2), dispatcher.passes
        time.sleep(0.3)
        assert dispatcher.passes == 2
    finally:
        dispatcher.may_end.set()
        scheduler.shutdown()


def test_a_wake_between_passes_starts_one_at_once() -> None:
    dispatcher = SlowDispatcher()
    dispatcher.may_end.set()
    scheduler = scheduler_with(dispatcher)
    scheduler.start()
    try:
        assert wait_for(lambda: dispatcher.passes == 1 and not dispatcher.running.is_set())
        time.sleep(0.1)

        scheduler.wake()

        assert wait_for(lambda: dispatcher.passes == 2), dispatcher.passes
    finally:
        scheduler.shutdown()


class FailingDispatcher(SlowDispatcher):
    """A dispatcher whose first pass raises, as one does when the database goes away."""

    def run_pass(self) -> None:
        self.passes += 1
        if self.passes == 1:
            raise RuntimeError("the database went away")


def test_a_pass_that_raises_is_logged_and_the_next_one_runs(caplog) -> None:
    dispatcher = FailingDispatcher()
    scheduler = scheduler_with(dispatcher)
    scheduler.start()
    try:
        assert wait_for(lambda: dispatcher.passes == 1)
        assert wait_for(lambda: "dispatch pass failed" in caplog.text), caplog.text

        scheduler.wake()

        assert wait_for(lambda: dispatcher.passes == 2), dispatcher.passes
    finally:
        scheduler.shutdown()
