"""`dripcourse subscribe|unsubscribe|pause|resume` and `dripcourse subscribers ...`."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from dripcourse.app import overview, people, roster, subscriptions
from dripcourse.cli.main import (
    App,
    command_line_actor,
    local_time,
    now_option,
    pass_app,
    utc_time,
)
from dripcourse.courses.catalog import get_course
from dripcourse.domain.cohort import LateJoiners
from dripcourse.domain.fields import parse_assignments
from dripcourse.domain.states import EnrollmentStatus
from dripcourse.errors import BadInput

course_option = click.option("--course", "course", metavar="SLUG", help="Only this course.")


@click.command("subscribe")
@click.argument("email")
@click.option("--course", "course", metavar="SLUG", required=True, help="The course to join.")
@click.option("--name", help="The person's name (the first word greets them).")
@click.option(
    "--timezone", metavar="TZ", help="IANA zone, e.g. Europe/Berlin (default: the course's zone)."
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="They have already agreed to receive the course: skip the confirmation email.",
)
@click.option(
    "--field",
    "field_pairs",
    metavar="NAME=VALUE",
    multiple=True,
    help="A custom field of the course (course.toml [fields]), e.g. level=returning; repeatable.",
)
@now_option
@pass_app
def subscribe(
    app: App,
    email: str,
    course: str,
    name: str | None,
    timezone: str | None,
    confirmed: bool,
    field_pairs: tuple[str, ...],
    now: str | None,
) -> None:
    """Enrol EMAIL in a course."""
    app.at(now)
    now_instant = app.clock.now()
    fields = parse_assignments(field_pairs)
    with app.database().transaction() as session:
        result = subscriptions.subscribe(
            session,
            email=email,
            course_slug=course,
            name=name,
            timezone=timezone,
            confirmed=confirmed,
            now=now_instant,
            source="cli",
            actor=command_line_actor(),
            fields=fields,
        )
        enrollment = result.enrollment
        address, zone = enrollment.subscriber.email, enrollment.subscriber.timezone
        state, due = enrollment.status, enrollment.next_due_at
        cohort = enrollment.course.settings.cohort
    if result.started:
        # Joining a cohort in progress, the first lesson is the cohort's current one when it is due.
        in_progress = cohort is not None and cohort.late_joiners is LateJoiners.JOIN_IN_PROGRESS
        first = "their first lesson" if in_progress else "lesson 1"
        lesson = first if result.created else "their next lesson"
        click.echo(f"subscribed {address} to {course}; {lesson} is due {local_time(due, zone)}")
    elif result.confirmation_queued:
        when = result.confirmation_due
        later = (
            f" for {local_time(when, zone)} (at most one an hour, two a day)"
            if when is not None and when > now_instant
            else ""
        )
        before = (
            "; they had unsubscribed from all mail, and only their confirmation brings them back"
            if result.unsubscribed_before
            else ""
        )
        click.echo(
            f"subscribed {address} to {course}; a confirmation email is queued{later} "
            f"(the course starts when they confirm){before}"
        )
    elif result.confirmation_held:
        click.echo(f"{address} is enrolled in {course} ({state}); {result.confirmation_held}")
    else:
        click.echo(f"{address} is already enrolled in {course} ({state})")


@click.command("unsubscribe")
@click.argument("email")
@course_option
@now_option
@pass_app
def unsubscribe(app: App, email: str, course: str | None, now: str | None) -> None:
    """Stop sending to EMAIL: one course, or (without --course) everything, for good."""
    app.at(now)
    with app.database().transaction() as session:
        ended = subscriptions.unsubscribe(
            session, email, app.clock.now(), course, actor=command_line_actor()
        )
        slugs = [e.course.slug for e in ended]
    scope = course if course else "all mail (address suppressed)"
    click.echo(
        f"unsubscribed {email.strip()} from {scope}"
        + (f"; enrolments ended: {', '.join(slugs)}" if slugs else "")
    )


@click.command("pause")
@click.argument("email")
@course_option
@now_option
@pass_app
def pause(app: App, email: str, course: str | None, now: str | None) -> None:
    """Hold EMAIL's lessons until `resume`."""
    app.at(now)
    with app.database().transaction() as session:
        changed = [
            e.course.slug
            for e in subscriptions.pause(
                session, email, app.clock.now(), course, actor=command_line_actor()
            )
        ]
    click.echo(f"paused {', '.join(changed)}" if changed else "nothing was active to pause")


@click.command("resume")
@click.argument("email")
@course_option
@now_option
@pass_app
def resume(app: App, email: str, course: str | None, now: str | None) -> None:
    """Continue EMAIL's paused lessons where they stopped."""
    app.at(now)
    with app.database().transaction() as session:
        changed = subscriptions.resume(
            session, email, app.clock.now(), course, actor=command_line_actor()
        )
        lines = [
            f"resumed {e.course.slug}; next lesson due "
            f"{local_time(e.next_due_at, e.subscriber.timezone)}"
            for e in changed
            if e.next_due_at
        ] or [f"resumed {e.course.slug}" for e in changed]
    click.echo("\n".join(lines) if lines else "nothing was paused")


@click.group("subscribers")
def subscribers_group() -> None:
    """List, show, import and export subscribers."""


@subscribers_group.command("list")
@course_option
@click.option("--status", type=click.Choice([status.value for status in EnrollmentStatus]))
@click.option("--limit", default=100, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@pass_app
def list_subscribers(
    app: App, course: str | None, status: str | None, limit: int, offset: int
) -> None:
    """Subscribers with their enrolments."""
    with app.database().transaction() as session:
        rows = overview.subscribers(session, course, status, limit, offset)
        lines = [
            f"{s.email:<36} {s.name or '-':<24} {s.timezone:<22} "
            + ", ".join(f"{e.course.slug}:{e.status}" for e in enrollments)
            for s, enrollments in rows
        ]
    click.echo("\n".join(lines) if lines else "no subscribers")


@subscribers_group.command("show")
@click.argument("email")
@pass_app
def show(app: App, email: str) -> None:
    """One subscriber: enrolments and delivery history."""
    with app.database().transaction() as session:
        subscriber, deliveries = overview.subscriber_detail(session, email)
        click.echo(
            f"{subscriber.email}  name: {subscriber.name or '-'}  zone: "
            f"{subscriber.timezone}  since {utc_time(subscriber.created_at)}"
        )
        for enrollment in subscriber.enrollments:
            click.echo(
                f"  {enrollment.course.slug}: {enrollment.status}; next lesson due "
                f"{local_time(enrollment.next_due_at, subscriber.timezone)}"
            )
        for delivery in deliveries:
            what = (
                f"lesson {delivery.lesson.position} {delivery.lesson.key}"
                if delivery.lesson
                else delivery.kind
            )
            when = utc_time(delivery.sent_at or delivery.next_attempt_at)
            error = f"  ({delivery.last_error})" if delivery.last_error else ""
            click.echo(
                f"  {when}  {delivery.enrollment.course.slug:<12} {what:<28} "
                f"{delivery.status:<10} attempts={delivery.attempts}  "
                f"{delivery.message_id}{error}"
            )


@subscribers_group.command("import")
@click.argument(
    "csv_file", metavar="CSV", type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--course", "course", metavar="SLUG", required=True)
@click.option(
    "--confirmed", is_flag=True, help="They have all agreed already: no confirmation emails."
)
@now_option
@pass_app
def import_csv(app: App, csv_file: Path, course: str, confirmed: bool, now: str | None) -> None:
    """Enrol everyone in CSV (header: email, name, timezone, and a column per custom field of the
    course; an unknown column is refused before anything is written). Bad rows are reported with
    their line numbers and skipped; good rows are kept. Exit status 1 if any row was skipped."""
    app.at(now)
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{csv_file} is not UTF-8 text") from None
    rows = list(roster.read_rows(io.StringIO(text, newline="")))
    with app.database().transaction() as session:
        # Refused before the progress bar draws anything: no such course, an unknown column.
        roster.check_columns(rows, get_course(session, course))
        with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
            report = roster.import_subscribers(
                session,
                rows,
                course,
                app.clock.now(),
                confirmed=confirmed,
                progress=bar.update,
                actor=command_line_actor(),
                file_name=csv_file.name,
            )
    for line, problem in report.rejected:
        click.echo(f"{csv_file}:{line}: {problem}", err=True)
    click.echo(
        f"imported {report.imported}, already enrolled {report.already_enrolled}, "
        f"skipped {len(report.rejected)}"
    )
    if report.rejected:
        raise SystemExit(1)


@subscribers_group.command("export")
@course_option
@click.option("--status", type=click.Choice([status.value for status in EnrollmentStatus]))
@now_option
@pass_app
def export_csv(app: App, course: str | None, status: str | None, now: str | None) -> None:
    """All subscribers and enrolments (or those of one course, one status) as CSV on stdout. The
    export is in the audit log: it hands personal data out."""
    app.at(now)
    database = app.database()
    with database.transaction() as session:
        roster.export_rows(session, course, status)  # the filters checked: a typo is no export
        roster.record_export(session, app.clock.now(), command_line_actor(), course, status)
    # Streamed in a reading transaction: a slow pipe must not hold up every writer.
    with database.read() as session:
        roster.write_csv(roster.export_rows(session, course, status), sys.stdout)


@subscribers_group.command("forget")
@click.argument("email")
@now_option
@pass_app
def forget(app: App, email: str, now: str | None) -> None:
    """Erase EMAIL's personal data (subscriber, enrolments, deliveries, consent evidence); only a
    hash of the address is kept, so that it is never mailed again."""
    app.at(now)
    with app.database().transaction() as session:
        result = people.forget(session, email, app.clock.now(), actor=command_line_actor())
    suppressed = f"suppressed by hash sha256:{result.address_hash[:12]}..."
    if not result.had_data:
        # Probably a typo: said on stderr with exit 1, though the address stays suppressed (the
        # person asked not to be mailed, whoever holds their data).
        click.echo(
            f"no subscriber {email.strip()}: nothing to erase; the address is {suppressed}",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"forgot {email.strip()}: personal data erased; {suppressed}")


def register(cli: click.Group) -> None:
    for command in (subscribe, unsubscribe, pause, resume, subscribers_group):
        cli.add_command(command)
