"""The one source of "now". Every scheduling decision takes its instant from a `Clock`.

`SystemClock` reads the wall clock; `FixedClock` holds a given instant (tests, `dripcourse tick --now`,
the demo's simulated weeks). All instants are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, instant: datetime) -> None:
        self._instant = as_utc(instant)

    def now(self) -> datetime:
        return self._instant

    def set(self, instant: datetime) -> None:
        self._instant = as_utc(instant)

    def advance(self, delta: timedelta) -> None:
        self._instant += delta


def as_utc(instant: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already (that is how SQLite hands them back)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)
