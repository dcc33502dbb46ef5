"""`dripcourse webhooks ...`: the endpoints that receive signed events (add, list, remove), a
test event sent now, and the recent failed deliveries."""

from __future__ import annotations

import click

from dripcourse.app import webhooks
from dripcourse.cli.main import App, now_option, pass_app, utc_time
from dripcourse.domain.webhooks import ALL_EVENTS
from dripcourse.sending.webhooks import send_test


@click.group("webhooks")
def webhooks_group() -> None:
    """Endpoints that receive signed POSTs (Standard Webhooks) when something happens."""


@webhooks_group.command("add")
@click.argument("url")
@click.option(
    "--events",
    multiple=True,
    metavar="TYPE[,TYPE...]",
    help=f"Only these events (default: all): {', '.join(sorted(ALL_EVENTS))}.",
)
@click.option(
    "--secret",
    metavar="whsec_...",
    envvar="DRIPCOURSE_NEW_WEBHOOK_SECRET",
    show_envvar=True,
    help="The signing secret the receiver already has; default: a new one, printed once.",
)
@now_option
@pass_app
def add(app: App, url: str, events: tuple[str, ...], secret: str | None, now: str | None) -> None:
    """Send events to URL (http or https), signed with its own secret."""
    app.at(now)
    names = [name for given in events for name in given.split(",")]
    with app.database().transaction() as session:
        added = webhooks.add_endpoint(session, url, names, app.clock.now(), secret)
        wanted = added.endpoint.events or "all events"
        address = added.endpoint.url
    click.echo(f"added {address} ({wanted})")
    if secret is None:
        click.echo(f"signing secret (shown once; give it to the receiver): {added.secret}")


@webhooks_group.command("list")
@pass_app
def list_(app: App) -> None:
    """The endpoints: URL, where it comes from (settings or command), the events it wants."""
    with app.database().read() as session:
        found = [
            (endpoint.url, endpoint.origin, endpoint.events or "all events")
            for endpoint in webhooks.list_endpoints(session)
        ]
    if not found:
        click.echo("no webhook endpoints")
    for url, origin, events in found:
        click.echo(f"{url}  {origin}  {events}")


@webhooks_group.command("remove")
@click.argument("url")
@pass_app
def remove(app: App, url: str) -> None:
    """Stop sending to URL (added by `webhooks add`); what it had not received is dropped."""
    with app.database().transaction() as session:
        webhooks.remove_endpoint(session, url)
    click.echo(f"removed {url.strip()}")


@webhooks_group.command("test")
@click.argument("url")
@now_option
@pass_app
def test(app: App, url: str, now: str | None) -> None:
    """Send one signed `webhook.test` event to the endpoint URL now, and say what it answered.
    Exit status 1 if it did not answer with a 2xx."""
    app.at(now)
    with app.database().read() as session:
        secret = webhooks.endpoint_secret(session, url.strip())
    attempt = send_test(url.strip(), secret, app.clock.now())
    if attempt.delivered:
        click.echo(f"delivered: HTTP {attempt.status}")
        return
    click.echo(f"not delivered: {attempt.reason}", err=True)
    raise SystemExit(1)


@webhooks_group.command("failures")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, help="At most this many.")
@pass_app
def failures(app: App, limit: int) -> None:
    """Recent failed deliveries, newest first: when, endpoint, event, attempts, what comes next,
    and the receiver's answer (a short excerpt)."""
    with app.database().read() as session:
        found = webhooks.recent_failures(session, limit)
    if not found:
        click.echo("no failed webhook deliveries")
    for failure in found:
        following = (
            f"next {utc_time(failure.next_attempt_at)}"
            if failure.next_attempt_at is not None
            else failure.status
        )
        click.echo(
            f"{utc_time(failure.last_attempt_at)}  {failure.url}  {failure.event_type} "
            f"{failure.message_id}  {failure.attempts} attempt(s)  {following}  {failure.reason}"
        )


def register(cli: click.Group) -> None:
    cli.add_command(webhooks_group)
