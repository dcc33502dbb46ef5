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
    if output == "json":
        click.echo(json.dumps([_record(row) for row in rows], indent=2, ensure_ascii=False))
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow(["" if value is None else value for value in _record(row).values()])
    else:
        click.echo(table(rows))


def _record(row: LessonReport) -> dict[str, object]:
    values = dataclasses.asdict(row)
    return {name: values[name] for name in FIELDS}


def table(rows: list[LessonReport]) -> str:
    """Aligned columns; a retired lesson's number and clicks not tracked show as "-"."""
    cells = [
        [
            "-" if value is None else _clip(str(value)) if name == "subject" else str(value)
            for name, value in _record(row).items()
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [list(_HEADINGS), *cells]) for i in range(len(FIELDS))]
    lines = []
    for line in [list(_HEADINGS), *cells]:
        parts = [
            cell.ljust(width) if i == 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _clip(subject: str) -> str:
    return subject if len(subject) <= _SUBJECT_WIDTH else subject[: _SUBJECT_WIDTH - 3] + "..."


def register(cli: click.Group) -> None:
    cli.add_command(report)
