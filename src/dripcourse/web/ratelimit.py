"""A token bucket per client address, in memory: enough to stop one client flooding the sign-up form.

Per process: with several processes behind a proxy each keeps its own buckets, so the effective limit
is the per-process limit times the process count.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

MAX_CLIENTS = 100_000
"""Buckets kept at most; the least recently seen client is forgotten first."""


class RateLimiter:
    def __init__(
        self, allowed: int, per: timedelta, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """`monotonic` is where the buckets read the time: the process's monotonic clock, or a
        test's own, so that a limit is tested without racing it."""
        self._monotonic = monotonic
        self.capacity = float(allowed)
        self.refill_per_second = allowed / per.total_seconds()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def has_room(self, client: str, now: float | None = None) -> bool:
        """Whether `client`'s bucket holds a token, taking none."""
        now = self._monotonic() if now is None else now
        with self._lock:
            return self._tokens(self._buckets.get(client), now) >= 1.0

    def allow(self, client: str, now: float | None = None) -> bool:
        """Take one token from `client`'s bucket; False when it is empty."""
        now = self._monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(self._buckets.pop(client, None), now)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            return allowed

    def _tokens(self, bucket: tuple[float, float] | None, now: float) -> float:
        """The tokens in a bucket (None: a client not seen yet, whose bucket is full) at `now`."""
        if bucket is None:
            return self.capacity
        tokens, seen = bucket
        return min(self.capacity, tokens + (now - seen) * self.refill_per_second)
