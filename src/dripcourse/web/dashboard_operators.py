"""The dashboard's Operators page (admins): invite an operator, change a role, remove one, mail a
new link; and the page where an invited operator chooses a password. Thin shells over
`app/operators.py` and `app/invitations.py`, the operations `dripcourse operators ...` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dripcourse.app import audit, invitations, operators
from dripcourse.domain.roles import Permission, Role
from dripcourse.errors import DripcourseError, NotSent
from dripcourse.store.models import Operator
from dripcourse.web.context import status_of
from dripcourse.web.dashboard import (
    MAX_FIELD,
    MAX_ID,
    Context,
    Signed,
    allowed,
    anonymous_form_valid,
    anonymous_page,
    check_csrf,
    render,
)

router = APIRouter(prefix="/admin", include_in_schema=False)

ROLES = [role.value for role in Role]


@router.get("/operators", response_class=HTMLResponse)
def operators_page(request: Request, context: Context, operator: Signed) -> Response:
    allowed(operator, Permission.MANAGE_OPERATORS)
    return _page(request, context, operator)


@router.post("/operators", response_class=HTMLResponse)
def invite(
    request: Request,
    context: Context,
    operator: Signed,
    email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """Add an operator and mail them the link to choose a password."""
    check_csrf(request, csrf)
    allowed(operator, Permission.MANAGE_OPERATORS)
    typed = {"email": email[:320], "role": role[:32]}
    try:
        sent = invitations.invite(
            context.database,
            context.settings,
            email,
            operators.role_of(role),
            context.clock.now(),
            audit.operator_actor(operator.email),
        )
    except NotSent as exc:
        return _page(request, context, operator, {"sent": str(exc)}, status=status_of(exc))
    except DripcourseError as exc:
        # A refusal without a field of its own (the address is taken) is about the address.
        field = getattr(exc, "field", None) or "email"
        return _page(request, context, operator, {field: str(exc)}, typed, status_of(exc))
    notice = (
        f"Invited {sent.email} as {sent.role}: "
        f"the link works until {sent.expires_at:%Y-%m-%d %H:%M} UTC."
    )
    return _page(request, context, operator, notice=notice)


OperatorId = Annotated[int, Path(ge=1, le=MAX_ID)]
Csrf = Annotated[str, Form(max_length=MAX_FIELD)]


@router.post("/operators/{operator_id}/role", response_class=HTMLResponse)
def set_role(
    request: Request,
    context: Context,
    operator: Signed,
    operator_id: OperatorId,
    role: Annotated[str, Form(max_length=32)] = "",
    csrf: Csrf = "",
) -> Response:
    def change(session: Session, other: Operator, now: datetime, actor: str) -> str:
        changed = operators.set_role(session, other.email, operators.role_of(role), now, actor)
        return f"{changed.email} is now {changed.role}."

    answer = _change(request, context, operator, operator_id, csrf, change)
    if operator_id == operator.id and answer.status_code == 200:
        return RedirectResponse("/admin/", status_code=303)  # this page may no longer be theirs
    return answer


@router.post("/operators/{operator_id}/remove", response_class=HTMLResponse)
def remove(
    request: Request, context: Context, operator: Signed, operator_id: OperatorId, csrf: Csrf = ""
) -> Response:
    def change(session: Session, other: Operator, now: datetime, actor: str) -> str:
        operators.remove_operator(session, other.email, now, actor)
        return f"Removed {other.email}."

    answer = _change(request, context, operator, operator_id, csrf, change)
    if operator_id == operator.id and answer.status_code == 200:
        return RedirectResponse("/admin/login", status_code=303)  # their session went with them
    return answer


@router.post("/operators/{operator_id}/invite", response_class=HTMLResponse)
def send_new_link(
    request: Request, context: Context, operator: Signed, operator_id: OperatorId, csrf: Csrf = ""
) -> Response:
    check_csrf(request, csrf)
    allowed(operator, Permission.MANAGE_OPERATORS)
    try:
        with context.database.read() as session:
            address = operators.get_operator(session, operator_id).email
        sent = invitations.send_invitation(
            context.database,
            context.settings,
            address,
            context.clock.now(),
            audit.operator_actor(operator.email),
        )
    except DripcourseError as exc:
        errors = {f"row-{operator_id}": str(exc)}
        return _page(request, context, operator, errors, status=status_of(exc))
    return _page(request, context, operator, notice=f"A new link went to {sent.email}.")


def _change(
    request: Request,
    context: Context,
    operator: Operator,
    operator_id: int,
    csrf: str,
    change: Callable[[Session, Operator, datetime, str], str],
) -> HTMLResponse:
    """One change to another account in one transaction; the Operators page again, saying what
    was done, or the refusal beside that account's row."""
    check_csrf(request, csrf)
    allowed(operator, Permission.MANAGE_OPERATORS)
    try:
        with context.database.transaction() as session:
            other = operators.get_operator(session, operator_id)
            notice = change(
                session, other, context.clock.now(), audit.operator_actor(operator.email)
            )
    except DripcourseError as exc:
        errors = {f"row-{operator_id}": str(exc)}
        return _page(request, context, operator, errors, status=status_of(exc))
    return _page(request, context, operator, notice=notice)


@router.get("/invitation", response_class=HTMLResponse)
def choose_password_form(
    request: Request,
    context: Context,
    token: Annotated[str, Query(max_length=invitations.MAX_TOKEN)] = "",
) -> Response:
    try:
        email = invitations.invited_operator(
            context.database, context.settings, token, context.clock.now()
        )
    except DripcourseError as exc:
        return _choose_page(request, context, token, "", {"link": str(exc)}, 400)
    return _choose_page(request, context, token, email)


@router.post("/invitation", response_class=HTMLResponse)
def choose_password(
    request: Request,
    context: Context,
    token: Annotated[str, Form(max_length=invitations.MAX_TOKEN)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    repeat: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    now = context.clock.now()
    try:
        email = invitations.invited_operator(context.database, context.settings, token, now)
    except DripcourseError as exc:
        return _choose_page(request, context, token, "", {"link": str(exc)}, 400)
    if not anonymous_form_valid(request, context, csrf):
        errors = {"form": "The form had expired. Please type the password again."}
        return _choose_page(request, context, token, email, errors, 400)
    if password != repeat:
        errors = {"repeat": "The two passwords are not the same."}
        return _choose_page(request, context, token, email, errors, 400)
    try:
        invitations.accept(context.database, context.settings, token, password, now)
    except DripcourseError as exc:
        field = getattr(exc, "field", None) or "link"
        return _choose_page(request, context, token, email, {field: str(exc)}, status_of(exc))
    return anonymous_page(
        request,
        context,
        "admin_login.html",
        title="Sign in",
        email=email,
        error="",
        notice="Your password is set. Sign in with it.",
    )


def _page(
    request: Request,
    context: Context,
    operator: Operator,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
    notice: str = "",
) -> HTMLResponse:
    with context.database.read() as session:
        accounts = operators.list_operators(session)
        rows = [
            (o.id, o.email, o.role, o.password_hash is not None, o.created_at) for o in accounts
        ]
    return render(
        request,
        operator,
        "admin_operators.html",
        status_code=status,
        title="Operators",
        rows=rows,
        roles=ROLES,
        errors=errors or {},
        typed=typed or {"email": "", "role": Role.EDITOR.value},
        notice=notice,
    )


def _choose_page(
    request: Request,
    context: Context,
    token: str,
    email: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return anonymous_page(
        request,
        context,
        "admin_choose_password.html",
        status,
        title="Choose your password",
        token=token[: invitations.MAX_TOKEN],
        email=email,
        errors=errors or {},
        min_length=operators.MIN_PASSWORD,
    )
