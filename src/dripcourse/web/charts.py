"""Bar charts drawn on the server as SVG: no script, no library, readable at any width.

A chart is a picture for the eye only (`aria-hidden`); its numbers are given beside it as a table
(see `admin_overview.html`), which screen readers read instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from dripcourse.app.activity import DayCount

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
