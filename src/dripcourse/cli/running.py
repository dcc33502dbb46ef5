"""`dripcourse tick|run|queue|status`: sending, and seeing what is due."""

from __future__ import annotations

import click

from dripcourse.app import overview
from dripcourse.app.housekeeping import daily
from dripcourse.cli.main import App, local_time, now_option, pass_app, utc_time
from dripcourse.sending.dispatch import Dispatcher, Sent
from dripcourse.sending.scheduler import Scheduler, run_forever
from dripcourse.telemetry import folder


def print_outcome(outcome: Sent) -> None:
    what = f"lesson {outcome.number} ({outcome.lesson})" if outcome.lesson else outcome.kind
    if outcome.kind == "extra":
        what += " [queued by operator]"
    detail = f"  {outcome.detail}" if outcome.status != "sent" and outcome.detail else ""
    click.echo(
        f"{utc_time(outcome.at)}  {outcome.status:<9} {outcome.email:<32} "
        f"{outcome.course:<12} {what}{detail}"
    )


@click.command("tick")
@now_option
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
@pass_app
def tick(app: App, now: str | None, quiet: bool) -> None:
    """Run one dispatch pass, as if it were --now, and print what it sent."""
    app.at(now)
    dispatcher = Dispatcher(app.database(), app.settings, app.backend(), app.clock)
    report = dispatcher.run_pass(on_outcome=None if quiet else print_outcome)
    click.echo(
        f"tick at {utc_time(app.clock.now())}: {report.count('sent')} sent, "
        f"{report.count('pending')} to retry, {report.count('failed')} failed, "
        f"{report.count('cancelled')} cancelled"
    )
    if not sum(report.counts.values()):
        # "0 sent" alone leaves a newcomer guessing; say when something will be due.
        with app.database().read() as session:
            first = overview.next_up(session)
        if first is None:
            click.echo("nothing was due, and nothing is owed to anyone")
        else:
            click.echo(
                f"nothing was due yet; next: {first.course} {first.lesson} to {first.email} "
                f"at {local_time(first.due_at, first.timezone)} ({utc_time(first.due_at)})"
            )


@click.command("run")
@pass_app
def run(app: App) -> None:
    """Run the scheduler in the foreground: a dispatch pass every DRIPCOURSE_DISPATCH_INTERVAL
    seconds, housekeeping daily. Ctrl-C or SIGTERM finishes the message in flight and exits."""
    database = app.database()
    folder.claim()
    dispatcher = Dispatcher(database, app.settings, app.backend(), app.clock)
    click.echo(
        f"dripcourse running: dispatch every {app.settings.dispatch_interval}s "
        f"via {app.settings.email_backend.split(':')[0]} (Ctrl-C to stop)",
        err=True,
    )
    housekeeping = daily(database, app.settings, app.clock)
    run_forever(Scheduler(app.settings, dispatcher, app.clock, housekeeping))


@click.command("queue")
@click.option("--limit", default=50, type=click.IntRange(1, 10_000))
@pass_app
def queue(app: App, limit: int) -> None:
    """What is due next, for whom, when (in their zone and in UTC)."""
    with app.database().transaction() as session:
        entries = overview.upcoming(session, limit)
    if not entries:
        click.echo("nothing is due")
    for entry in entries:
        click.echo(
            f"{utc_time(entry.due_at)}  {local_time(entry.due_at, entry.timezone):<38} "
            f"{entry.state:<8} {entry.email:<32} {entry.course:<12} {entry.lesson}"
        )


@click.command("status")
@now_option
@pass_app
def status(app: App, now: str | None) -> None:
    """Counts of subscribers, enrolments, deliveries and suppressions; failures; next due."""
    app.at(now)
    with app.database().transaction() as session:
        state = overview.status(session, app.clock.now())

    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"

    click.echo(f"subscribers:  {state.subscribers}")
    click.echo(f"enrolments:   {counts(state.enrollments)}")
    click.echo(f"deliveries:   {counts(state.deliveries)}")
    click.echo(f"suppressions: {counts(state.suppressions)}")
    click.echo(f"failed in the last 24 h: {state.failed_last_day}")
    for email, lesson, error in state.recent_failures:
        click.echo(f"  {email} {lesson}: {error}")
    click.echo(f"next due:     {utc_time(state.next_due)}")


def register(cli: click.Group) -> None:
    for command in (tick, run, queue, status):
        cli.add_command(command)
