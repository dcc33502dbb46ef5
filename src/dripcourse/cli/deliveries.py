"""`dripcourse deliveries ...`: the failed and retrying deliveries, and "retry now"."""

from __future__ import annotations

import click

from dripcourse.app import deliveries
from dripcourse.cli.main import App, command_line_actor, local_time, now_option, pass_app, utc_time


@click.group("deliveries")
def deliveries_group() -> None:
    """Deliveries that failed or wait to be tried again."""


@deliveries_group.command("failed")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, help="At most this many.")
@click.option(
    "--before", type=click.IntRange(1, 2**62), help="Only deliveries with a smaller id (paging)."
)
@pass_app
def failed(app: App, limit: int, before: int | None) -> None:
    """Failed and retrying deliveries, newest first: id, status, attempts, address, course,
    lesson, when it is tried next (UTC and the person's zone), and the server's last answer."""
    with app.database().read() as session:
        page = deliveries.in_trouble(session, before=before, limit=limit)
    if not page.rows:
        click.echo("no failed or retrying deliveries")
        return
    for row in page.rows:
        when = (
            f"next {utc_time(row.next_attempt_at)} ({local_time(row.next_attempt_at, row.timezone)})"
            if row.next_attempt_at is not None
            else "not tried again unless retried"
        )
        click.echo(
            f"{row.delivery_id:>8}  {row.status:<8} {row.attempts:>3} attempt(s)  {row.email}  "
            f"{row.course} {row.lesson}  {when}  {row.answer}"
        )
    if page.after is not None:
        click.echo(f"more: dripcourse deliveries failed --before {page.after}", err=True)


@deliveries_group.command("retry")
@click.argument("delivery_id", metavar="ID", type=click.IntRange(1, 2**62))
@now_option
@pass_app
def retry(app: App, delivery_id: int, now: str | None) -> None:
    """Make the failed or retrying delivery ID due now (the next dispatch pass sends it). A
    delivery already sent or being sent, or to someone who may no longer be mailed, is refused."""
    app.at(now)
    with app.database().transaction() as session:
        done = deliveries.retry_now(
            session, delivery_id, app.clock.now(), actor=command_line_actor()
        )
    click.echo(
        f"delivery {done.delivery_id} ({done.lesson} of {done.course} to {done.email}) is due "
        f"now, after {done.attempts} attempt(s)"
    )


def register(cli: click.Group) -> None:
    cli.add_command(deliveries_group)
