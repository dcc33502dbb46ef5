"""The dashboard's operators: accounts, passwords, roles, and signed-in sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended option)
and never kept or logged in the clear. A sign-in that fails says the same, and takes about as
long, whether the address has an account or not; the hash is checked outside any transaction, so
that 150 ms of argon2 never holds SQLite's write lock. A session is a random token in the
browser's cookie; only its SHA-256 is kept, so reading the database opens no session. There is
always at least one admin once there is one: the last admin can be neither removed nor demoted.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.domain.roles import Role, parse_role
from dripcourse.domain.validation import has_control_characters, mailbox_key, normalise_email
from dripcourse.errors import BadInput, Conflict, NotFound
from dripcourse.store.db import Database
from dripcourse.store.models import Operator, OperatorSession

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
"""Characters. argon2 takes any length, but a megabyte typed into a form is not a password."""

_hasher = PasswordHasher()


@cache
def _nobody() -> str:
    """Verified against when the address has no account, so that a miss costs what a hit costs.
    Made on first use: a hash costs 64 MiB and a tenth of a second, which no other command pays."""
    return _hasher.hash(secrets.token_urlsafe(16))


def check_password(password: str) -> str:
    """`password` if it may be one, else `BadInput` saying why (never echoing it)."""
    if len(password) < MIN_PASSWORD:
        raise BadInput(
            f"the password is too short: at least {MIN_PASSWORD} characters", field="password"
        )
    if len(password) > MAX_PASSWORD:
        raise BadInput(
            f"the password is too long: at most {MAX_PASSWORD} characters", field="password"
        )
    if has_control_characters(password):
        raise BadInput("the password may not contain control characters", field="password")
    return password


def role_of(text: str) -> Role:
    try:
        return parse_role(text)
    except ValueError as exc:
        raise BadInput(str(exc), field="role") from None


def hash_password(password: str) -> str:
    """The argon2id hash of an acceptable password (`check_password`). Slow on purpose: made
    outside any transaction."""
    return _hasher.hash(check_password(password))


def add_operator(
    session: Session, email: str, role: Role, password: str | None, now: datetime, actor: str
) -> Operator:
    """A new account; with `password` None it waits for the operator to choose one."""
    address = normalise_email(email)
    if _find(session, address) is not None:
        raise Conflict(f"{address} is an operator already")
    hashed = hash_password(password) if password is not None else None
    operator = Operator(
        email=address,
        email_key=mailbox_key(address),
        role=role.value,
        password_hash=hashed,
        created_at=now,
    )
    session.add(operator)
    session.flush()
    audit.record(session, now, actor, "operator added", address, f"role {role.value}")
    return operator


def set_password(
    session: Session, operator: Operator, hashed: str, now: datetime, actor: str, how: str
) -> None:
    """Store a password's hash (`hash_password`) and end the sessions opened with the old one."""
    operator.password_hash = hashed
    session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))
    audit.record(session, now, actor, "password chosen", operator.email, how)


def list_operators(session: Session) -> Sequence[Operator]:
    return session.scalars(select(Operator).order_by(Operator.email_key)).all()


def get_operator(session: Session, operator_id: int) -> Operator:
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise NotFound(f"no operator with id {operator_id}")
    return operator


def find_operator(session: Session, email: str) -> Operator:
    operator = _find(session, email)
    if operator is None:
        raise NotFound(f"no operator {email.strip()[:320]!r}")
    return operator


def remove_operator(session: Session, email: str, now: datetime, actor: str) -> None:
    operator = find_operator(session, email)
    if operator.role == Role.ADMIN and _admins(session) == 1:
        raise Conflict(f"{operator.email} is the last admin; make another admin first")
    session.delete(operator)
    audit.record(session, now, actor, "operator removed", operator.email)


def set_role(session: Session, email: str, role: Role, now: datetime, actor: str) -> Operator:
    operator = find_operator(session, email)
    if operator.role == role:
        return operator
    if operator.role == Role.ADMIN and _admins(session) == 1:
        raise Conflict(f"{operator.email} is the last admin; make another admin first")
    before, operator.role = operator.role, role.value
    audit.record(session, now, actor, "role changed", operator.email, f"{before} -> {role.value}")
    return operator


@dataclass(frozen=True, slots=True)
class SignedIn:
    operator: Operator
    token: str
    """For the browser's cookie, and nowhere else."""
    expires_at: datetime


def sign_in(
    database: Database,
    email: str,
    password: str,
    now: datetime,
    lifetime: timedelta,
    *,
    replacing: str = "",
) -> SignedIn | None:
    """A new session for the operator whose password this is; None for any mismatch.

    Three short steps: read the stored hash, check it outside any transaction, then record the
    session (ending the browser's previous one, `replacing`, so that a planted cookie does not
    outlive the sign-in).
    """
    found = None
    key = _key_of(email)
    if key is not None:
        with database.read() as session:
            found = session.execute(
                select(Operator.id, Operator.password_hash).where(Operator.email_key == key)
            ).first()
    stored = found.password_hash if found is not None else None
    try:
        _hasher.verify(stored or _nobody(), password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if found is None or stored is None:
        return None
    token = secrets.token_urlsafe(32)
    with database.transaction() as session:
        operator = session.get(Operator, found.id)
        if operator is None or operator.password_hash != stored:
            return None  # removed, or given a new password, meanwhile
        if _hasher.check_needs_rehash(stored):
            operator.password_hash = _hasher.hash(password)
        if replacing:
            sign_out(session, replacing)
        session.add(
            OperatorSession(
                token_hash=_token_hash(token),
                operator_id=operator.id,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        # Sessions that ran out are of no use to anyone: they go whenever someone signs in.
        session.execute(delete(OperatorSession).where(OperatorSession.expires_at <= now))
    return SignedIn(operator, token, now + lifetime)


def attempt_key(email: str) -> str:
    """Whose account a sign-in attempt is for: the mailbox key of the address as it would be
    stored (so that another spelling of the domain is the same account, and the same bucket of
    attempts), or the text as typed when it is no address at all."""
    return _key_of(email) or email.strip().lower()[:320]


def signed_in(session: Session, token: str, now: datetime) -> Operator | None:
    """The operator of a live session, or None (unknown, ended or expired)."""
    if not token or len(token) > 100:
        return None
    found = session.scalar(
        select(OperatorSession).where(OperatorSession.token_hash == _token_hash(token))
    )
    if found is None or found.expires_at <= now:
        return None
    return found.operator


def sign_out(session: Session, token: str) -> None:
    session.execute(delete(OperatorSession).where(OperatorSession.token_hash == _token_hash(token)))


def _find(session: Session, email: str) -> Operator | None:
    key = _key_of(email)
    if key is None:
        return None
    return session.scalar(select(Operator).where(Operator.email_key == key))


def _key_of(email: str) -> str | None:
    """The mailbox key of `email` as it would be stored; None when it is no address at all (it
    then names no account, and goes to no query)."""
    try:
        return mailbox_key(normalise_email(email))
    except BadInput:
        return None


def _admins(session: Session) -> int:
    # The admins' rows are locked while counted: on PostgreSQL two demotions of two different
    # admins at once would otherwise both see two and leave none (SQLite's writers take turns).
    return len(
        session.scalars(
            select(Operator.id).where(Operator.role == Role.ADMIN).with_for_update()
        ).all()
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
