"""Crash safety: `dripcourse tick` and `dripcourse run` killed with SIGKILL in the middle of sending.

The promise (README, "Delivery and its guarantees"): at least once, with a window of one send group
per crash. Nothing is lost; a message can be sent twice only if the worker died between the server's
answers and their record, so at most DRIPCOURSE_SEND_GROUP copies per kill. With one worker
(DRIPCOURSE_WORKERS=1) and send groups of 20 that bound is tight enough to mean something.

Each kill comes a random 0.2-1.5 s after the killed process has started sending (its first message
reached the server), so that every kill lands in the middle of the work and not during start-up.
The seed is printed; set RELIABILITY_SEED to replay a run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

from dripcourse.devtools.smtpserver import CapturingSMTPServer

from .conftest import DUE, Installation, Installer, per_recipient, reader

SEND_GROUP = 20
LEASE_SECONDS = 5
KILLS = 5
CRASH_ENV = {
    "DRIPCOURSE_SEND_GROUP": str(SEND_GROUP),
    "DRIPCOURSE_LEASE_SECONDS": str(LEASE_SECONDS),
    "DRIPCOURSE_WORKERS": "1",
}


def seeded() -> random.Random:
    seed = int(os.environ.get("RELIABILITY_SEED", str(time.time_ns() % 1_000_000)))
    print(f"\n[reliability] RELIABILITY_SEED={seed}")
    return random.Random(seed)


def kill_while_sending(
    proc: subprocess.Popen[str], server: CapturingSMTPServer, rng: random.Random
) -> bool:
    """SIGKILL `proc` once a random 1-200 of its messages have arrived; False if it finished first
    (then it was not a crash).

    Counted in messages, not seconds: on a loaded machine a timed kill lands anywhere from the
    first message to after the last, and later kills would find nothing left to interrupt.
    """
    before = len(server.messages)
    target = before + rng.randint(1, 200)
    deadline = time.monotonic() + 60
    while len(server.messages) < target and proc.poll() is None:
        assert time.monotonic() < deadline, "the process stopped sending"
        time.sleep(0.002)
    if proc.poll() is not None:
        proc.communicate()
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return True


def duplicates(counts: dict[str, int]) -> int:
    return sum(n - 1 for n in counts.values())


def assert_all_sent_once_or_within_window(
    setup: Installation, server: CapturingSMTPServer, n: int, kills: int, what: str
) -> None:
    counts = per_recipient(server)
    missing = [reader(i) for i in range(n) if counts[reader(i)] < 1]
    doubled = duplicates(counts)
    bound = kills * SEND_GROUP
    print(
        f"[reliability] {what}: {n} subscribers, {kills} SIGKILLs, "
        f"{len(server.messages)} messages received, lost {len(missing)}, "
        f"duplicates {doubled} (bound {kills} x {SEND_GROUP} = {bound})"
    )
    assert missing == []
    assert doubled <= bound
    # The ledger agrees with the server: every lesson recorded as sent, none left claimed.
    assert setup.statuses() == {"sent": n}
    assert setup.rows("SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL") == [(0,)]


def test_tick_killed_repeatedly_loses_nothing_and_repeats_at_most_a_group_per_kill(
    installation: Installer, server: CapturingSMTPServer
) -> None:
    n = 2000
    setup = installation(n, server.url)
    setup.env.update(CRASH_ENV)
    rng = seeded()
    now = DUE + timedelta(minutes=1)
    kills = 0
    for _ in range(KILLS):
        proc = setup.start("tick", "--now", now.isoformat(), "-q")
        kills += kill_while_sending(proc, server, rng)
        # Past the lease: the claims of the dead process are taken over by the next one.
        now += timedelta(seconds=LEASE_SECONDS + 5)
    assert kills >= KILLS - 1, "the ticks finished before they could be killed"
    done = setup.tick(now)
    assert "0 to retry, 0 failed" in done.stdout
    assert_all_sent_once_or_within_window(setup, server, n, kills, "tick x SIGKILL")


def test_run_killed_once_loses_nothing_and_repeats_at_most_a_group(
    installation: Installer, server: CapturingSMTPServer
) -> None:
    # `run` follows the system clock: these lessons fell due an hour ago.
    n = 1000
    setup = installation(n, server.url, at=datetime.now(UTC) - timedelta(hours=1))
    setup.env.update(CRASH_ENV, DRIPCOURSE_DISPATCH_INTERVAL="1")
    rng = seeded()
    assert kill_while_sending(setup.start("run"), server, rng)
    # `run` never exits by itself: check that the kill came with work left to do.
    assert setup.statuses()["sent"] < n, "`dripcourse run` had sent everything before the kill"
    # A new `run` takes over the dead one's claims once their lease has expired (in real time).
    before_restart = len(server.messages)
    proc = setup.start("run")
    try:
        deadline = time.monotonic() + 40
        # It has sent something (so it is past start-up and minds SIGTERM) and finished.
        while setup.statuses() != {"sent": n} or len(server.messages) <= before_restart:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, f"not all sent: {setup.statuses()}"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert_all_sent_once_or_within_window(setup, server, n, 1, "run x SIGKILL")
