"""The dashboard's SVG bars: one per day, scaled to the largest, the words in HTML and escaped."""

from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dripcourse.app.activity import DayCount
from dripcourse.web.charts import HEIGHT, day_bars

START = date(2026, 3, 1)


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60))
def test_one_bar_per_day_the_largest_full_height(counts: list[int]) -> None:
    days = [DayCount(START + timedelta(days=n), count) for n, count in enumerate(counts)]
    drawn = str(day_bars(days, "sent"))
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', drawn)]
    assert len(heights) == len(counts)
    top = max(counts)
    if top:
        assert max(heights) == HEIGHT - 4
    assert all(h == 0 for h, c in zip(heights, counts, strict=True) if c == 0)
    assert f">{top:,}<" in drawn


def test_the_label_is_escaped_and_the_chart_is_hidden_from_screen_readers() -> None:
    drawn = str(day_bars([DayCount(START, 1)], '"><script>alert(1)</script>'))
    assert "<script>" not in drawn
    assert 'aria-hidden="true"' in drawn


def test_no_days_no_chart() -> None:
    assert str(day_bars([], "sent")) == ""
