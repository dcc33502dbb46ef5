"""`dripcourse timeline EMAIL`, and the printing of `dripcourse courses calendar`: a person's course
lesson by lesson, what they had and when the rest comes, as `timeline.py` works it out."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click

from dripcourse.app import timeline as plans
from dripcourse.app.timeline import Calendar, EnrollmentTimeline, Hold, LedgerRow
from dripcourse.cli.main import App, local_time, now_option, pass_app, utc_time
from dripcourse.domain.cohort import Cohort, LateJoiners, cohort_note
from dripcourse.domain.schedule import DAY_ABBREVIATIONS, PlannedLesson, Rhythm

_SINCE = {
    "active": "active since",
    "paused": "paused since",
    "pending": "signed up",
    "completed": "completed",
    "unsubscribed": "unsubscribed",
}


@click.command("timeline")
@click.argument("email")
@now_option
@pass_app
def timeline(app: App, email: str, now: str | None) -> None:
    """EMAIL's courses lesson by lesson: what was sent (when, attempts, Message-ID), what is owed
    and when (in their zone and in UTC), and why a lesson is held."""
    app.at(now)
    with app.database().read() as session:
        found = plans.timeline(session, email, app.clock.now())
    name = f" ({found.name})" if found.name else ""
    click.echo(
        f"{found.email}{name}, {found.timezone}, as of {local_time(found.now, found.timezone)}"
    )
    for enrollment in found.enrollments:
        click.echo("")
        for line in enrollment_lines(enrollment, found.timezone, found.now):
            click.echo(line)


def enrollment_lines(enrollment: EnrollmentTimeline, zone: str, now: datetime) -> list[str]:
    header = (
        f"{_SINCE.get(enrollment.status, enrollment.status)} {local_time(enrollment.since, zone)}"
    )
    lines = [f"{enrollment.course}  {enrollment.title}  {header}"]
    labels = [_row_label(row) for row in enrollment.ledger]
    labels += [_label(lesson.number, lesson.key) for lesson in enrollment.owed]
    held = enrollment.held.lessons if enrollment.held else []
    labels += [_label(number, key) for number, key in held]
    labels += [_label(lesson.number, lesson.key) for lesson in enrollment.before_joining]
    labels += [_label(skip.number, skip.key) for skip in enrollment.skipped]
    width = max([18, *map(len, labels)])
    for lesson in enrollment.before_joining:
        label = _label(lesson.number, lesson.key)
        note = (cohort_note(lesson, ZoneInfo(zone)) or "").removeprefix("skipped: ")
        lines.append(f"  {'skipped':<9} {label:<{width}} {note}")
    # Each line with the lesson number it is about (None: a confirmation), so that the lessons
    # they skip (for an audience they are outside) can be put in their place.
    rows: list[tuple[int | None, str]] = [
        (
            row.number if row.key else None,
            f"  {_state(row):<9} {label:<{width}} {_when(row.at, zone)}{_detail(row)}",
        )
        for row, label in zip(enrollment.ledger, labels, strict=False)
    ]
    for lesson in enrollment.owed:
        label = _label(lesson.number, lesson.key)
        note = _owed_note(lesson, zone, now)
        rows.append(
            (lesson.number, f"  {'owed':<9} {label:<{width}} {_when(lesson.due_at, zone)}{note}")
        )
    for skip in enrollment.skipped:
        line = f"  {'skipped':<9} {_label(skip.number, skip.key):<{width}} ({skip.note})"
        # Before the first lesson after it: a skipped lesson has no time of its own.
        at = next(
            (i for i, (n, _) in enumerate(rows) if n is not None and n > skip.number), len(rows)
        )
        rows.insert(at, (skip.number, line))
    lines += [line for _number, line in rows]
    if enrollment.held is not None:
        reason = _held_reason(enrollment.held, zone)
        for index, (number, key) in enumerate(held):
            label = _label(number, key)
            note = reason if index == 0 else ""
            lines.append(f"  {'held':<9} {label:<{width}} {note}".rstrip())
    if not enrollment.owed and not held and not any(row.waiting for row in enrollment.ledger):
        lines.append("  nothing more is owed")
    return lines


def _when(instant: datetime, zone: str) -> str:
    return f"{local_time(instant, zone)}  ({utc_time(instant)})"


def _label(number: int | None, key: str) -> str:
    # Numbers right-aligned, so that the keys of a ten-lesson course line up.
    return f"{'-' if number is None else number:>2} {key}"


def _row_label(row: LedgerRow) -> str:
    # A confirmation or a completion email has no lesson: its kind names it.
    return row.kind if row.key is None else _label(row.number, row.key)


def _state(row: LedgerRow) -> str:
    if row.status == "pending" and row.attempts:
        return "retry"
    return row.status


def _detail(row: LedgerRow) -> str:
    parts = [f"attempts {row.attempts}", row.message_id]
    if row.kind == "extra":
        parts.append("extra: queued by an operator")
    if row.last_error:
        parts.append(("" if row.status == "cancelled" else "last error: ") + row.last_error)
    return "  " + "  ".join(parts)


def _owed_note(lesson: PlannedLesson, zone: str, now: datetime) -> str:
    notes = [
        note
        for note in [lesson.moved_note(ZoneInfo(zone)), cohort_note(lesson, ZoneInfo(zone))]
        if note
    ]
    if lesson.due_at <= now:
        notes.append("due now: the next dispatch pass sends it")
    return "".join(f"  {note}" for note in notes)


def _held_reason(hold: Hold, zone: str) -> str:
    since = local_time(hold.since, zone)
    if hold.reason == "paused":
        return f"held: paused since {since}"
    if hold.reason == "suppressed":
        return f"held: suppressed ({hold.detail}) since {since}"
    if hold.reason == "unconfirmed":
        return f"held: waiting for confirmation (signed up {since})"
    return "held: no time is set for it"


def print_calendar(calendar: Calendar) -> None:
    zone = calendar.timezone
    click.echo(
        f"{calendar.course}  {calendar.title}: subscribing {local_time(calendar.start, zone)} "
        f"({utc_time(calendar.start)})"
    )
    click.echo(f"{_rhythm_text(calendar.rhythm)}, in {zone}")
    if calendar.cohort is not None:
        click.echo(_cohort_text(calendar.cohort))
    if calendar.fields:
        click.echo("for " + ", ".join(f"{k}={v or '(none)'}" for k, v in calendar.fields.items()))
    labels = [_label(x.number, x.key) for x in calendar.lessons]
    width = max([18, *map(len, labels), *(len(_label(s.number, s.key)) for s in calendar.skipped)])
    lines: list[tuple[int, str]] = [
        (skip.number, f"  {_label(skip.number, skip.key):<{width}} ({skip.note})")
        for skip in calendar.skipped
    ]
    for lesson in calendar.lessons:
        label = _label(lesson.number, lesson.key)
        if lesson.skipped is not None:
            lines.append(
                (lesson.number, f"  {label:<{width}} {cohort_note(lesson, ZoneInfo(zone))}")
            )
            continue
        notes = [lesson.moved_note(ZoneInfo(zone)), cohort_note(lesson, ZoneInfo(zone))]
        line = f"  {label:<{width}} {_when(lesson.due_at, zone)}"
        lines.append((lesson.number, line + "".join(f"  {note}" for note in notes if note)))
    for _number, line in sorted(lines, key=lambda item: item[0]):
        click.echo(line)


def _cohort_text(cohort: Cohort) -> str:
    how = {
        LateJoiners.CATCH_UP: "late joiners catch up from lesson 1, one lesson per send day",
        LateJoiners.JOIN_IN_PROGRESS: "late joiners start at the cohort's current lesson",
    }[cohort.late_joiners]
    return f"a cohort course starting {cohort.starts_on:%a %d %b %Y}; {how}"


def _rhythm_text(rhythm: Rhythm) -> str:
    days = (
        "every day"
        if len(rhythm.send_days) == 7
        else "on " + ", ".join(DAY_ABBREVIATIONS[day] for day in sorted(rhythm.send_days))
    )
    every = "day" if rhythm.cadence_days == 1 else f"{rhythm.cadence_days} days"
    return f"a lesson every {every} at {rhythm.send_time:%H:%M}, sent {days}"


def register(cli: click.Group) -> None:
    cli.add_command(timeline)
