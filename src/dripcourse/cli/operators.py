"""`dripcourse operators ...`: the accounts of the dashboard (add, list, set-role, remove).

Whoever runs these commands can read the database already, so the command line needs no sign-in;
each change is in the audit log under the system user who made it.
"""

from __future__ import annotations

import sys

import click

from dripcourse.app import invitations, operators
from dripcourse.cli.main import App, command_line_actor, now_option, pass_app
from dripcourse.domain.roles import Role

ROLES = click.Choice([role.value for role in Role], case_sensitive=False)


@click.group("operators")
def group() -> None:
    """The people who may sign in to the dashboard at /admin/, and their roles: a viewer sees
    everything, an editor also runs subscribers and lessons, an admin also manages operators."""


@group.command("add")
@click.argument("email")
@click.option("--role", type=ROLES, required=True, help="What the operator may do.")
@click.option(
    "--invite",
    is_flag=True,
    help="Mail them a one-time link to choose their own password, instead of typing one.",
)
@now_option
@pass_app
def add(app: App, email: str, role: str, invite: bool, now: str | None) -> None:
    """Add an operator. The password is typed twice at a terminal; from a pipe or a file it is
    the first line of standard input (`printf '%s\\n' "$PASSWORD" | dripcourse operators add ...`).
    With --invite, no password is asked: they get a link by email to choose it."""
    app.at(now)
    if invite:
        sent = invitations.invite(
            app.database(),
            app.settings,
            email,
            Role(role.lower()),
            app.clock.now(),
            command_line_actor(),
        )
        click.echo(
            f"added {sent.email} as {sent.role}; an invitation was mailed, "
            f"valid until {sent.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        return
    password = operators.check_password(_read_password())
    with app.database().transaction() as session:
        added = operators.add_operator(
            session, email, Role(role.lower()), password, app.clock.now(), command_line_actor()
        )
        said = f"added {added.email} as {added.role}"
    click.echo(said)


@group.command("invite")
@click.argument("email")
@now_option
@pass_app
def invite_again(app: App, email: str, now: str | None) -> None:
    """Mail a new link to an operator who has not chosen a password yet."""
    app.at(now)
    sent = invitations.send_invitation(
        app.database(), app.settings, email, app.clock.now(), command_line_actor()
    )
    click.echo(
        f"invitation mailed to {sent.email}, valid until {sent.expires_at:%Y-%m-%d %H:%M} UTC"
    )


@group.command("list")
@pass_app
def list_(app: App) -> None:
    """Every operator with their role."""
    with app.database().read() as session:
        rows = [
            (o.email, o.role, o.password_hash is not None)
            for o in operators.list_operators(session)
        ]
    if not rows:
        click.echo("no operators yet: add one with `dripcourse operators add EMAIL --role admin`")
        return
    width = max(len(email) for email, _, _ in rows)
    for email, role, has_password in rows:
        state = "" if has_password else "  (has not chosen a password yet)"
        click.echo(f"{email:<{width}}  {role}{state}")


@group.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLES)
@now_option
@pass_app
def set_role(app: App, email: str, role: str, now: str | None) -> None:
    """Give an operator another role (the last admin stays one)."""
    app.at(now)
    with app.database().transaction() as session:
        changed = operators.set_role(
            session, email, Role(role.lower()), app.clock.now(), command_line_actor()
        )
        said = f"{changed.email} is now {changed.role}"
    click.echo(said)


@group.command("remove")
@click.argument("email")
@now_option
@pass_app
def remove(app: App, email: str, now: str | None) -> None:
    """Remove an operator and end their sessions (the last admin cannot be removed)."""
    app.at(now)
    with app.database().transaction() as session:
        operators.remove_operator(session, email, app.clock.now(), command_line_actor())
    click.echo(f"removed {email.strip()}")


def _read_password() -> str:
    if sys.stdin.isatty():
        return str(
            click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
        )
    line = sys.stdin.readline(operators.MAX_PASSWORD + 2)
    return line.rstrip("\r\n")


def register(cli: click.Group) -> None:
    cli.add_command(group)
