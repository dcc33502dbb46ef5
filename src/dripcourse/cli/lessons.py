"""`dripcourse lessons ...`: list, preview, send a test, queue a lesson outside the rhythm."""

from __future__ import annotations

from pathlib import Path

import click

from dripcourse.app import lessons, overview
from dripcourse.cli.main import App, command_line_actor, local_time, now_option, pass_app
from dripcourse.domain.validation import parse_instant
from dripcourse.errors import BadInput
from dripcourse.mail.builder import MessageBuilder
from dripcourse.mail.tokens import Signer
from dripcourse.store.privatefiles import write_private
from dripcourse.store.queries import secret_key


@click.group("lessons")
def lessons_group() -> None:
    """The lessons of a course."""


@lessons_group.command("list")
@click.argument("slug")
@pass_app
def list_lessons(app: App, slug: str) -> None:
    """The lessons of course SLUG, in sending order (retired ones last)."""
    with app.database().transaction() as session:
        summary = overview.course_summary(session, slug)
        for number, lesson in enumerate(summary.lessons, start=1):
            click.echo(f"{number:>3}  {lesson.key:<22} {lesson.subject}  [{lesson.source_file}]")
        for lesson in summary.retired:
            click.echo(
                f"  -  {lesson.key:<22} {lesson.subject}  [retired {lesson.retired_at:%Y-%m-%d}]"
            )


@lessons_group.command("preview")
@click.argument("slug")
@click.argument("lesson", metavar="N")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the HTML (default: SLUG-N.html in the current folder).",
)
@click.option("--name", default="Sam Sample", help="The sample reader's name.")
@click.option("--email", default="sample.reader@example.com", help="The sample reader's address.")
@pass_app
def preview(app: App, slug: str, lesson: str, output: Path | None, name: str, email: str) -> None:
    """Render lesson N (number or key) of SLUG: HTML to a file you can open, text to stdout."""
    with app.database().transaction() as session:
        builder = MessageBuilder(
            Signer(secret_key(session, app.settings.secret_key)),
            app.settings.base_url,
            media_url=app.settings.media_url,
        )
        _, found, rendered = lessons.preview(session, builder, slug, lesson, email=email, name=name)
    target = output or Path(f"{slug}-{found.position:02d}-{found.key}.html")
    # 0600: --email may be a real subscriber's, and the links are signed with the real key.
    write_private(target, rendered.html.encode("utf-8"))
    click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.text)
    click.echo(
        f"HTML written to {target.resolve()} ({len(rendered.html.encode()):,} bytes)", err=True
    )


@lessons_group.command("send-test")
@click.argument("slug")
@click.argument("lesson", metavar="N")
@click.option("--to", "to", required=True, metavar="EMAIL", help="Where the test goes.")
@click.option("--name", default="Sam Sample", help="The name the lesson greets.")
@click.option("--timezone", default="UTC", metavar="TZ")
@now_option
@pass_app
def send_test(
    app: App, slug: str, lesson: str, to: str, name: str, timezone: str, now: str | None
) -> None:
    """Send lesson N of SLUG to --to now, through the configured backend, marked [Test]."""
    app.at(now)
    sent = lessons.send_test(
        app.database(),
        app.settings,
        slug,
        lesson,
        to,
        name=name,
        timezone=timezone,
        now=app.clock.now(),
        actor=command_line_actor(),
    )
    click.echo(
        f"sent lesson {sent.number} ({sent.key}) of {sent.course} to {sent.to} "
        f"via {app.settings.email_backend.split(':')[0]}"
    )


@lessons_group.command("queue")
@click.argument("slug")
@click.argument("lesson", metavar="N")
@click.option("--to", "to", metavar="EMAIL", help="One enrolled person.")
@click.option("--all-active", is_flag=True, help="Everyone active in the course.")
@click.option("--at", "at", metavar="ISO-8601", help="When it is due (default: now).")
@now_option
@pass_app
def queue(
    app: App,
    slug: str,
    lesson: str,
    to: str | None,
    all_active: bool,
    at: str | None,
    now: str | None,
) -> None:
    """Owe lesson N of SLUG outside the normal rhythm (their weekly lessons go on as before)."""
    if (to is None) == (not all_active):
        raise BadInput("give exactly one of --to EMAIL or --all-active")
    app.at(now)
    when = parse_instant(at) if at else app.clock.now()
    with app.database().transaction() as session:
        count = lessons.queue_lesson(
            session,
            slug,
            lesson,
            when,
            to=to,
            all_active=all_active,
            actor=command_line_actor(),
            now=app.clock.now(),
        )
    click.echo(
        f"queued lesson {lesson} of {slug} for {count} "
        f"{'person' if count == 1 else 'people'}, due {local_time(when, 'UTC')}"
    )


def register(cli: click.Group) -> None:
    cli.add_command(lessons_group)
