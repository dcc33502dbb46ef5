"""Invitations: an operator is added without a password and mailed a link to choose one.

The link carries a signed token (`mail/tokens.py`, purpose "invite") that expires, and that is
bound to the account's password as it was when the link was made: once a password is chosen the
fingerprint no longer matches, so each link works once, and every older link dies with it. Nothing
about a link is stored, so there is nothing in the database to steal that would open an account.

The mail is sent through the configured backend after the account is committed, outside any
transaction, as the dispatcher sends; a send that fails leaves the account waiting, and
`send_invitation` (the CLI's `operators invite`, the dashboard's "send a new link") tries again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from html import escape
from urllib.parse import quote, urlsplit

from argon2 import PasswordHasher
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
from dripcourse.store.queries import secret_key

ACCEPT_PATH = "/admin/invitation"
_hasher = PasswordHasher()


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
    _mail(database, settings, invitation, now)
    return invitation


def send_invitation(
    database: Database, settings: Settings, email: str, now: datetime, actor: str
) -> Invitation:
    """A new link for an operator who has not chosen a password yet (the first was lost, or ran
    out); the earlier links keep working until they expire or one of them is used."""
    with database.transaction() as session:
        operator = operators.find_operator(session, email)
        if operator.password_hash is not None:
            raise Conflict(f"{operator.email} has a password already")
        invitation = _invitation(session, settings, operator, now)
        audit.record(session, now, actor, "invitation sent", operator.email)
    _mail(database, settings, invitation, now)
    return invitation


def invited_operator(database: Database, settings: Settings, token: str, now: datetime) -> str:
    """The address a valid link was made for; `BadInput` for a forged, used or expired one."""
    with database.transaction() as session:
        operator = _operator_of(session, settings, token, now)
        return operator.email


def accept(database: Database, settings: Settings, token: str, password: str, now: datetime) -> str:
    """Set the password the link's operator chose; the link is used up. Returns the address.

    The hash is made outside any transaction (argon2 takes a tenth of a second that must not hold
    SQLite's write lock); the link is checked again when the hash is stored, so that two forms
    sent with one link set one password.
    """
    operators.check_password(password)
    invited_operator(database, settings, token, now)
    hashed = _hasher.hash(password)
    with database.transaction() as session:
        operator = _operator_of(session, settings, token, now)
        operator.password_hash = hashed
        actor = audit.operator_actor(operator.email)
        audit.record(session, now, actor, "password chosen", operator.email, "with an emailed link")
        return operator.email


def _invitation(
    session: Session, settings: Settings, operator: Operator, now: datetime
) -> Invitation:
    # The expiry is in the signed payload, measured on the injectable clock (not the signing
    # library's wall clock), so that `--now` and the server agree on when a link runs out.
    expires_at = now + timedelta(hours=settings.invitation_hours)
    payload = {
        "o": operator.id,
        "p": _fingerprint(operator.password_hash),
        "e": int(expires_at.timestamp()),
    }
    token = _signer(session, settings).make(Purpose.INVITE, payload)
    base = settings.base_url.rstrip("/")
    return Invitation(
        email=operator.email,
        role=operator.role,
        link=f"{base}{ACCEPT_PATH}?token={quote(token, safe='')}",
        expires_at=expires_at,
    )


def _operator_of(session: Session, settings: Settings, token: str, now: datetime) -> Operator:
    if len(token) > 400:
        raise BadInput("this link is not valid")
    payload = _signer(session, settings).read(Purpose.INVITE, token)
    if not all(isinstance(payload.get(key), int) for key in ("o", "p", "e")):
        raise BadInput("this link is not valid")
    if now.timestamp() > payload["e"]:
        raise BadInput("this link has expired; ask an admin for a new one")
    operator = session.get(Operator, payload["o"])
    if operator is None or _fingerprint(operator.password_hash) != payload["p"]:
        raise BadInput("this link has been used already, or its account is gone")
    return operator


def _fingerprint(password_hash: str | None) -> int:
    """A number that changes whenever the password does (none, or its argon2 hash)."""
    digest = hashlib.sha256((password_hash or "no password").encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _signer(session: Session, settings: Settings) -> Signer:
    return Signer(secret_key(session, settings.secret_key))


def _mail(database: Database, settings: Settings, invitation: Invitation, now: datetime) -> None:
    with database.read() as session:
        sender = _sender(session, settings)
    hours = settings.invitation_hours
    text = (
        "Hello,\n\n"
        f"You have been given a {invitation.role} account on the dripcourse dashboard at "
        f"{settings.base_url.rstrip('/')}/admin/.\n\n"
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


def _sender(session: Session, settings: Settings) -> str:
    if settings.dashboard_sender:
        return normalise_email(settings.dashboard_sender)
    course = session.scalar(select(Course).order_by(Course.slug).limit(1))
    if course is not None:
        return course.settings.sender.email
    host = urlsplit(settings.base_url).hostname or "localhost"
    return normalise_email(f"dripcourse@{host}")
