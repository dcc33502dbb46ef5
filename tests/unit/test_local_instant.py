"""A time typed on a person's page is in their zone (`validation.parse_local_instant`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dripcourse.domain.validation import parse_local_instant
from dripcourse.errors import BadInput


@pytest.mark.parametrize(
    ("typed", "zone", "utc"),
    [
        ("2026-03-02T08:00", "Europe/Berlin", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("2026-07-01T08:00", "Europe/Berlin", datetime(2026, 7, 1, 6, 0, tzinfo=UTC)),
        ("2026-03-08T12:00", "America/Toronto", datetime(2026, 3, 8, 16, 0, tzinfo=UTC)),
        # An explicit offset wins over the person's zone.
        ("2026-03-02T08:00+00:00", "Australia/Sydney", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        # 02:30 does not exist in Toronto on 8 March 2026: read with the offset before the change.
        ("2026-03-08T02:30", "America/Toronto", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # 01:30 happens twice on 1 November 2026: the first time (PEP 495 fold=0).
        ("2026-11-01T01:30", "America/Toronto", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
)
def test_a_typed_time_is_read_in_the_persons_zone(typed: str, zone: str, utc: datetime) -> None:
    assert parse_local_instant(typed, zone) == utc


@pytest.mark.parametrize("typed", ["", "next tuesday", "2026-13-01T08:00", "9" * 40, "\x00"])
def test_what_is_no_time_is_bad_input(typed: str) -> None:
    with pytest.raises(BadInput, match="not a date and time"):
        parse_local_instant(typed, "Europe/Berlin")
