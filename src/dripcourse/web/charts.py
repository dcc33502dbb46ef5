"""Bar charts drawn on the server as SVG: no script, no library, readable at any width. Messages per
day (the overview), and how many people are still with a course at each lesson (a course's page).

A chart is a picture for the eye only (`aria-hidden`); its numbers are given beside it as a table
(see `admin_overview.html`), which screen readers read instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from dripcourse.app.activity import DayCount
from dripcourse.app.report import LessonReport

WIDTH = 600
HEIGHT = 120


def day_bars(days: Sequence[DayCount], label: str) -> Markup:
    """One bar per day, scaled to the largest. The bars stretch to any width; the words (the
    largest count, the first and the last day) are HTML beside them, so they never stretch."""
    if not days:
        return Markup("")
    top = max(day.count for day in days)
    slot = WIDTH / len(days)
    bars = []
    for index, day in enumerate(days):
        height = round(day.count / (top or 1) * (HEIGHT - 4), 1)
        bars.append(
            f'<rect x="{index * slot + slot * 0.15:.1f}" y="{HEIGHT - height:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{height}" rx="1.5"/>'
        )
    first, last = days[0].day, days[-1].day
    return Markup(
        f'<div class="chart-box" data-label="{escape(label)}">'
        f'<div class="chart-scale" aria-hidden="true">{top:,}</div>'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'aria-hidden="true" focusable="false">'
        f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}"/>{"".join(bars)}</svg>'
        f'<div class="chart-axis" aria-hidden="true"><span>{first:%d %b}</span>'
        f"<span>{last:%d %b}</span></div></div>"
    )


def lesson_bars(rows: Sequence[LessonReport]) -> Markup:
    """How many people are still with a course at each lesson: one bar per lesson in course order,
    as tall as the messages of it the mail server accepted (`sent`: the people it reached), the
    top part of which, in a second colour, is those who left right after it (`unsubscribed`).

    The figures are the course report's (`app/report.py`), drawn, never counted again here.
    Retired lessons have no place in the order and are left out of the picture (the report's
    table beside it lists them). The lesson numbers under the bars are HTML in as many equal
    columns as there are bars, so they stay under their bar at any width; past 20 lessons only
    the first and the last are written.
    """
    lessons = [row for row in rows if row.lesson is not None]
    if not lessons:
        return Markup("")
    top = max(row.sent for row in lessons)
    slot = WIDTH / len(lessons)
    bars = []
    for index, row in enumerate(lessons):
        x, width = f"{index * slot + slot * 0.15:.1f}", f"{slot * 0.7:.1f}"
        reached = _scaled(row.sent, top)
        left = min(_scaled(row.unsubscribed, top), reached)
        bars.append(
            f'<rect x="{x}" y="{HEIGHT - reached:.1f}" width="{width}" height="{reached}" rx="1.5"/>'
        )
        if left:
            bars.append(
                f'<rect class="left" x="{x}" y="{HEIGHT - reached:.1f}" width="{width}" '
                f'height="{left}"/>'
            )
    numbers = [str(row.lesson) for row in lessons]
    if len(numbers) > 20:
        numbers = [numbers[0], *[""] * (len(numbers) - 2), numbers[-1]]
    axis = "".join(f"<span>{number}</span>" for number in numbers)
    return Markup(
        f'<div class="chart-box">'
        f'<div class="chart-scale" aria-hidden="true">{top:,}</div>'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'aria-hidden="true" focusable="false">'
        f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}"/>{"".join(bars)}</svg>'
        f'<div class="chart-lessons" aria-hidden="true" '
        f'style="grid-template-columns: repeat({len(numbers)}, minmax(0, 1fr))">{axis}</div>'
        f'<div class="chart-legend" aria-hidden="true"><span class="key reached"></span>reached '
        f'by the lesson (sent) <span class="key left"></span>of them, left right after it</div>'
        f"</div>"
    )


def _scaled(count: int, top: int) -> float:
    return round(count / (top or 1) * (HEIGHT - 4), 1)
