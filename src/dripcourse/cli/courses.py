"""`dripcourse courses ...`: check, sync and list the courses under the courses folder."""

from __future__ import annotations

from pathlib import Path

import click

from dripcourse.app import overview
from dripcourse.app.timeline import course_calendar
from dripcourse.cli.main import App, now_option, pass_app
from dripcourse.cli.timeline import print_calendar
from dripcourse.courses.catalog import SyncReport, check_course, load_sources, sync_course
from dripcourse.courses.checks import course_warnings
from dripcourse.domain.cohort import LateJoiners
from dripcourse.domain.fields import parse_assignments
from dripcourse.domain.validation import parse_instant
from dripcourse.errors import BadInput


@click.group("courses")
def courses_group() -> None:
    """Course folders: check them, load them into the database, list them."""


@courses_group.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--strict", is_flag=True, help="Exit with status 1 on warnings too, not only problems."
)
@pass_app
def check(app: App, path: Path | None, strict: bool) -> None:
    """Render every lesson for a sample subscriber and report mistakes as file:line: message.

    Problems (exit status 1) stop a course from syncing; warnings ("file:line: warning: ...") are
    about how it reads in an inbox, and give exit status 1 only with --strict.
    """
    failed = False
    for source in load_sources(app.settings.courses_dir, path):
        problems = check_course(source)
        warnings = course_warnings(source)
        for found in (*problems, *warnings):
            click.echo(str(found), err=True)
        counts = [f"{len(problems)} problem(s)"] if problems else []
        counts += [f"{len(warnings)} warning(s)"] if warnings else []
        click.echo(f"{source.slug}: {len(source.lessons)} lessons, {', '.join(counts) or 'ok'}")
        failed = failed or bool(problems) or (strict and bool(warnings))
    if failed:
        raise SystemExit(1)


@courses_group.command("sync")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@now_option
@pass_app
def sync(app: App, path: Path | None, now: str | None) -> None:
    """Load courses into the database (all under the courses folder, or PATH).

    Each course is synced on its own: one with problems is refused as a whole, named on stderr with
    its first problem, and the others are synced (exit status 1 if any was refused). Lessons are
    matched by key, so renaming or reordering files keeps everyone's history.
    """
    app.at(now)
    database = app.database()
    refused = False
    for source in load_sources(app.settings.courses_dir, path):
        try:
            with database.transaction() as session:
                report = sync_course(session, source, app.clock.now())
        except BadInput as exc:  # the course's problems: nothing of it was written
            click.echo(f"dripcourse: error: {exc}", err=True)
            refused = True
            continue
        for warning in report.warnings:
            click.echo(warning, err=True)
        click.echo(_summary(report))
    if refused:
        raise SystemExit(1)


def _summary(report: SyncReport) -> str:
    parts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated",
        f"{len(report.retired)} retired",
    ]
    if report.reordered:
        parts.append("reordered")
    if report.images_added:
        parts.append(f"{report.images_added} image(s) added")
    if report.reopened:
        parts.append(f"{report.reopened} finished enrolment(s) reopened for new lessons")
    return f"{report.slug}: " + ", ".join(parts)


@courses_group.command("list")
@pass_app
def list_courses(app: App) -> None:
    """The synced courses with their lesson and subscriber counts."""
    with app.database().transaction() as session:
        summaries = overview.courses(session)
    if not summaries:
        click.echo("no courses yet: run `dripcourse courses sync`")
    for summary in summaries:
        course = summary.course
        rhythm = course.settings.rhythm
        click.echo(
            f"{course.slug:<16} {course.title}  ({len(summary.lessons)} lessons, "
            f"every {rhythm.cadence_days} days at {rhythm.send_time:%H:%M}, "
            f"{summary.enrolled} enrolled)"
        )


@courses_group.command("calendar")
@click.argument("slug")
@click.option(
    "--start",
    metavar="ISO-8601",
    help="When the person subscribes (UTC unless an offset is given; default: now).",
)
@click.option("--timezone", metavar="TZ", help="Their IANA zone (default: the course's zone).")
@click.option(
    "--late-joiners",
    type=click.Choice([mode.value for mode in LateJoiners]),
    help="A cohort course only: preview this way of placing late joiners instead of the "
    "course's own (schedule.late_joiners), without editing the course.",
)
@click.option(
    "--field",
    "field_pairs",
    metavar="NAME=VALUE",
    multiple=True,
    help="Their value of a custom field, e.g. level=returning (repeatable; default: none given).",
)
@pass_app
def calendar(
    app: App,
    slug: str,
    start: str | None,
    timezone: str | None,
    late_joiners: str | None,
    field_pairs: tuple[str, ...],
) -> None:
    """The send times, lesson by lesson, of a person subscribing to SLUG at --start in --timezone,
    from the course files alone (the database is not touched). In a cohort course each lesson is
    shown against the cohort's date: caught up, catching up, or skipped (joined in progress)."""
    instant = parse_instant(start) if start is not None else app.clock.now()
    fields = parse_assignments(field_pairs)
    found = course_calendar(
        app.settings.courses_dir,
        slug,
        instant,
        timezone,
        late_joiners=late_joiners,
        fields=fields,
    )
    print_calendar(found)


def register(cli: click.Group) -> None:
    cli.add_command(courses_group)
