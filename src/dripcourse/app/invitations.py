"""Invitations: an operator is added without a password and mailed a link to choose one.

The link carries a signed token (`mail/tokens.py`, purpose "invite") holding the operator's id,
the expiry (on the injectable clock) and a random number drawn when the link was mailed and kept
on the account (`Operator.invitation_nonce`). Mailing a new link draws a new number, and choosing
a password clears it: a link works once, only the newest one works, and a link of a removed
account never opens another that happens to get its id.

The mail is sent through the configured backend after the account is committed, outside any
transaction, as the dispatcher sends; a send that fails leaves the account waiting, and
`send_invitation` (the CLI's `operators invite`, the dashboard's "send a new link") tries again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from html import escape
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.app import audit, operators
from dripcourse.backends import load_backend
from dripcourse.backends.base import Outcome, OutgoingMessage
from dripcourse.config import Settings
from dripcourse.domain.roles import Role
from dripcourse.domain.validation import normalise_email
from dripcourse.errors import BadInput, Conflict, NotSent
from dripcourse.mail import mime
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.db import Database
from dripcourse.store.models import Course, Operator
from dripcourse.store.queries import known_secret_key, secret_key

ACCEPT_PATH = "/admin/invitation"
MAX_TOKEN = 400


@dataclass(frozen=True, slots=True)
class Invitation:
    email: str
    role: str
    link: str
    expires_at: datetime


def invite(
    database: Database, settings: Settings, email: str, role: Role, now: datetime, actor: str
) -> Invitation:
    """Add an operator who has no password yet and mail them the link to choose one."""
    with database.transaction() as session:
        operator = operators.add_operator(session, email, role, None, now, actor)
        invitation = _invitation(session, settings, operator, now)
    _mail(database, settings, invitation, now, actor)
    return invitation


def send_invitation(
    database: Database, settings: Settings, email: str, now: datetime, actor: str
) -> Invitation:
    """A new link for an operator who has not chosen a password yet (the first was lost, or ran
    out); the links mailed before it stop working."""
    with database.transaction() as session:
        operator = operators.find_operator(session, email)
        if operator.password_hash is not None:
            raise Conflict(f"{operator.email} has a password already")
        invitation = _invitation(session, settings, operator, now)
    _mail(database, settings, invitation, now, actor)
    return invitation


def invited_operator(database: Database, settings: Settings, token: str, now: datetime) -> str:
    """The address a valid link was made for; `BadInput` for a forged, used or expired one.
    Only reads: a stranger's forged link never waits for (or holds up) a writer."""
    with database.read() as session:
        return _operator_of(session, settings, token, now).email


def accept(database: Database, settings: Settings, token: str, password: str, now: datetime) -> str:
    """Set the password the link's operator chose; the link is used up. Returns the address.

    The hash is made outside any transaction (argon2 takes a tenth of a second that must not hold
    SQLite's write lock); the link is checked again, with the account's row locked, when the hash
    is stored, so that two forms sent with one link set one password on any database.
    """
    invited_operator(database, settings, token, now)
    hashed = operators.hash_password(password)
    with database.transaction() as session:
        operator = _operator_of(session, settings, token, now, lock=True)
        operator.invitation_nonce = None
        actor = audit.operator_actor(operator.email)
        operators.set_password(session, operator, hashed, now, actor, "with an emailed link")
        return operator.email


def _invitation(
    session: Session, settings: Settings, operator: Operator, now: datetime
) -> Invitation:
    operator.invitation_nonce = secrets.randbits(48)
    # The expiry is in the signed payload, measured on the injectable clock (not the signing
    # library's wall clock), so that `--now` and the server agree on when a link runs out.
    expires_at = now + timedelta(hours=settings.invitation_hours)
    payload = {"o": operator.id, "n": operator.invitation_nonce, "e": int(expires_at.timestamp())}
    token = Signer(secret_key(session, settings.secret_key)).make(Purpose.INVITE, payload)
    base = settings.base_url.rstrip("/")
    return Invitation(
        email=operator.email,
        role=operator.role,
        link=f"{base}{ACCEPT_PATH}?token={quote(token, safe='')}",
        expires_at=expires_at,
    )


def _operator_of(
    session: Session, settings: Settings, token: str, now: datetime, *, lock: bool = False
) -> Operator:
    key = known_secret_key(session, settings.secret_key)
    if key is None or len(token) > MAX_TOKEN:
        raise BadInput("this link is not valid")
    payload = Signer(key).read(Purpose.INVITE, token)
    if not all(type(payload.get(name)) is int for name in ("o", "n", "e")):
        raise BadInput("this link is not valid")
    if now.timestamp() > payload["e"]:
        raise BadInput("this link has expired; ask an admin for a new one")
    operator = session.get(Operator, payload["o"], with_for_update=lock)
    if operator is None or operator.invitation_nonce != payload["n"]:
        raise BadInput("this link has been used already, or a newer one was sent")
    return operator


def _mail(
    database: Database, settings: Settings, invitation: Invitation, now: datetime, actor: str
) -> None:
    """Send the link; once the server has taken it, the audit log says so."""
    with database.read() as session:
        sender = _sender(session, settings)
    hours = settings.invitation_hours
    text = (
        "Hello,\n\n"
        f"You have been given a {invitation.role} account on the dripcourse dashboard.\n\n"
        "Choose your password here:\n\n"
        f"{invitation.link}\n\n"
        f"The link works once, for {hours} hours. If you did not expect it, ignore this "
        "message: nothing happens until a password is chosen.\n"
    )
    html = (
        '<!doctype html><html lang="en"><body style="font-family:sans-serif;line-height:1.5">'
        f"<p>Hello,</p><p>You have been given a {invitation.role} account on the dripcourse "
        "dashboard.</p>"
        f'<p><a href="{escape(invitation.link)}">Choose your password</a></p>'
        f"<p>The link works once, for {hours} hours. If you did not expect it, ignore this "
        "message: nothing happens until a password is chosen.</p></body></html>"
    )
    domain = sender.rpartition("@")[2]
    envelope = mime.Envelope(
        sender_name="dripcourse",
        sender_email=sender,
        recipient_name="",
        recipient_email=invitation.email,
        message_id=make_msgid("invite", domain=domain),
        date=now,
    )
    data = mime.compose(envelope, "Your dripcourse dashboard account", text, html)
    message = OutgoingMessage(
        key="invitation", sender=sender, recipient=invitation.email, data=data
    )
    with load_backend(settings.email_backend) as backend:
        result = backend.send([message])[0]
    if result.outcome != Outcome.SENT:
        raise NotSent(
            f"{invitation.email} was added, but the invitation was not sent "
            f"({result.outcome}: {result.detail}); try again with "
            f"`dripcourse operators invite {invitation.email}`"
        )
    with database.transaction() as session:
        audit.record(session, now, actor, "invitation sent", invitation.email)


def _sender(session: Session, settings: Settings) -> str:
    if settings.dashboard_sender:
        return normalise_email(settings.dashboard_sender)
    course = session.scalar(select(Course).order_by(Course.slug).limit(1))
    if course is not None:
        return course.settings.sender.email
    host = urlsplit(settings.base_url).hostname or "localhost"
    return normalise_email(f"dripcourse@{host}")
