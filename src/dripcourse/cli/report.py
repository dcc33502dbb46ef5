"""`dripcourse report SLUG`: per lesson, what was sent, failed, bounced, unsubscribed, clicked."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys

import click

from dripcourse.app.report import LessonReport, course_report
from dripcourse.cli.main import App, pass_app

FIELDS = ("lesson", "subject", "sent", "failed", "bounced", "unsubscribed", "clicked")
"""The columns of every format, in order (the lesson's key is left out: the subject names it)."""
_HEADINGS = ("LESSON", "SUBJECT", "SENT", "FAILED", "BOUNCED", "UNSUBSCRIBED", "CLICKED")
AUDIENCE_FIELDS = ("audience", "skipped")
_SUBJECT_WIDTH = 44


@click.command("report")
@click.argument("slug")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    help="A table to read, CSV for a spreadsheet, or JSON (a list of objects) for programs.",
)
@pass_app
def report(app: App, slug: str, output: str) -> None:
    """Per lesson of course SLUG: messages sent (accepted by the mail server), failed, bounced
    afterwards, people who unsubscribed right after it, and people who clicked a link (only when
    the course tracks clicks: "-" otherwise)."""
    with app.database().read() as session:
        rows = course_report(session, slug)
    columns = _columns(rows)
    if output == "json":
        records = [_record(row, columns) for row in rows]
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            record = _record(row, columns)
            writer.writerow(["" if value is None else value for value in record.values()])
    else:
        click.echo(table(rows))


def _columns(rows: list[LessonReport]) -> tuple[str, ...]:
    """FIELDS, and `audience` and `skipped` when a lesson of the course is for an audience."""
    return FIELDS + AUDIENCE_FIELDS if any(row.audience for row in rows) else FIELDS


def _record(row: LessonReport, columns: tuple[str, ...] = FIELDS) -> dict[str, object]:
    values = dataclasses.asdict(row)
    return {name: values[name] for name in columns}


def table(rows: list[LessonReport]) -> str:
    """Aligned columns; a retired lesson's number and clicks not tracked show as "-"."""
    columns = _columns(rows)
    headings = list(_HEADINGS) + [name.upper() for name in columns[len(FIELDS) :]]
    cells = [
        [
            "-" if value is None else _clip(str(value)) if name == "subject" else str(value)
            for name, value in _record(row, columns).items()
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [headings, *cells]) for i in range(len(columns))]
    lines = []
    for line in [headings, *cells]:
        parts = [
            cell.ljust(width) if i in (1, 7) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _clip(subject: str) -> str:
    return subject if len(subject) <= _SUBJECT_WIDTH else subject[: _SUBJECT_WIDTH - 3] + "..."


def register(cli: click.Group) -> None:
    cli.add_command(report)
