"""The course page's chart: a bar per lesson in course order, as tall as the people the lesson
reached (its `sent`), the part who left right after it marked; retired lessons left out; the
numbers under the bars in HTML; a picture only (the report's table says the numbers)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from dripcourse.app.report import LessonReport
from dripcourse.web.charts import HEIGHT, lesson_bars


def row(number: int | None, sent: int, unsubscribed: int = 0) -> LessonReport:
    return LessonReport(
        lesson=number,
        key=f"lesson-{number}",
        subject=f"Lesson {number}",
        sent=sent,
        failed=0,
        bounced=0,
        unsubscribed=unsubscribed,
        clicked=None,
    )


def bars(drawn: str, kind: str = "") -> list[float]:
    start = f'<rect class="{kind}" ' if kind else "<rect x="
    return [float(h) for h in re.findall(rf'{re.escape(start)}[^>]*height="([0-9.]+)"', drawn)]


@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)).map(
            lambda pair: (pair[0], min(pair))  # nobody leaves after a lesson they did not get
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_bar_per_lesson_the_largest_full_height_and_those_who_left_within_it(
    counts: list[tuple[int, int]],
) -> None:
    drawn = str(lesson_bars([row(n, sent, left) for n, (sent, left) in enumerate(counts, 1)]))
    reached, left = bars(drawn), bars(drawn, "left")
    assert len(reached) == len(counts)
    top = max(sent for sent, _ in counts)
    if top:
        assert max(reached) == HEIGHT - 4
    assert all(h == 0 for h, (sent, _) in zip(reached, counts, strict=True) if sent == 0)
    assert len(left) == len(
        [1 for _, gone in counts if gone and round(gone / top * (HEIGHT - 4), 1)]
    )
    assert all(h <= max(reached) for h in left)
    assert f">{top:,}<" in drawn


def test_the_lessons_are_numbered_under_their_bars_and_retired_ones_left_out() -> None:
    drawn = str(lesson_bars([row(1, 10, 2), row(2, 8), row(3, 5, 1), row(None, 4)]))
    assert len(bars(drawn)) == 3
    assert re.findall(r"<span>(\d+)</span>", drawn) == ["1", "2", "3"]
    assert "repeat(3, minmax(0, 1fr))" in drawn
    # A lesson that 10 reached and 2 left after: the part who left is a fifth of its bar.
    [first_left, _] = bars(drawn, "left")
    assert first_left == round(2 / 10 * (HEIGHT - 4), 1)


def test_past_twenty_lessons_only_the_first_and_last_are_numbered() -> None:
    drawn = str(lesson_bars([row(n, n) for n in range(1, 31)]))
    assert re.findall(r"<span>(\d+)</span>", drawn) == ["1", "30"]
    assert drawn.count("<span></span>") == 28


def test_the_chart_is_hidden_from_screen_readers() -> None:
    """Its parts (the scale, the bars, the numbers under them, the legend): the table beside it
    is what a screen reader reads."""
    drawn = str(lesson_bars([row(1, 3)]))
    parts = re.findall(r'<(?:div class="chart-(?!box)[a-z]+"|svg)[^>]*>', drawn)
    assert len(parts) == 4
    assert all('aria-hidden="true"' in part for part in parts)


def test_no_lessons_no_chart() -> None:
    assert str(lesson_bars([])) == ""
    assert str(lesson_bars([row(None, 5)])) == ""
