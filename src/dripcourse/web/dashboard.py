"""The operator's dashboard under /admin/: sign-in, sign-out, and the pages, as thin shells.

Server-rendered HTML, usable without JavaScript. A signed-in browser holds one cookie (HttpOnly,
SameSite=Lax, Secure when the base URL is https) naming a session kept in the database
(`app/operators.py`). Every form that changes something carries a CSRF token derived from that
session; the sign-in form, before there is a session, a double-submit token. Sign-in attempts are
limited per client and per address, and a failure never tells whether the address has an account.
What an operator may do is asked of `domain/roles.may`, whichever way the request came.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from dripcourse.app import operators
from dripcourse.app.activity import activity
from dripcourse.domain.roles import Permission, Role, may
from dripcourse.store.models import Operator
from dripcourse.web.charts import day_bars
from dripcourse.web.context import WebContext, context_of
from dripcourse.web.public import page

router = APIRouter(prefix="/admin", include_in_schema=False)
STATIC = StaticFiles(directory=Path(__file__).parent / "static")
"""The dashboard's own script files, under /admin/static/."""
Context = Annotated[WebContext, Depends(context_of)]

SESSION_COOKIE = "dripcourse_admin"
LOGIN_COOKIE = "dripcourse_signin"
"""The double-submit token of the sign-in form (there is no session to bind it to yet)."""
MAX_FIELD = 1024
MAX_ID = 2**62
"""The largest id a URL may name: beyond it, a number is no row of ours (and no SQLite integer)."""


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


class Forbidden(Exception):
    """Signed in, but the operator's role does not allow this."""


def csrf_token(session_token: str) -> str:
    """The token every form of a signed-in page carries: an HMAC keyed by the session's secret
    token, which a page on another site can neither read nor compute."""
    return hmac.new(session_token.encode(), b"dripcourse csrf", "sha256").hexdigest()


def signed_in_operator(request: Request, context: Context) -> Operator:
    token = request.cookies.get(SESSION_COOKIE, "")
    with context.database.read() as session:
        operator = operators.signed_in(session, token, context.clock.now())
    if operator is None:
        raise SignInRequired
    request.state.session_token = token
    return operator


Signed = Annotated[Operator, Depends(signed_in_operator)]


def allowed(operator: Operator, permission: Permission) -> None:
    if not may(Role(operator.role), permission):
        raise Forbidden


def check_csrf(request: Request, given: str) -> None:
    expected = csrf_token(request.state.session_token)
    if not hmac.compare_digest(expected.encode(), given.encode()[:MAX_FIELD]):
        raise Forbidden


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, context: Context) -> Response:
    return _login_page(request, context)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    context: Context,
    email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    if not anonymous_form_valid(request, context, csrf):
        return _login_page(
            request, context, 400, "The form had expired. Please sign in again.", email
        )
    client = request.client.host if request.client else "unknown"
    account = operators.attempt_key(email)
    if not context.signins.allow(client, account):
        slow_down = _login_page(
            request, context, 429, "Too many sign-in attempts. Wait a minute and try again.", email
        )
        slow_down.headers["Retry-After"] = "60"
        return slow_down
    lifetime = timedelta(hours=context.settings.admin_session_hours)
    signed = operators.sign_in(
        context.database,
        email,
        password,
        context.clock.now(),
        lifetime,
        replacing=request.cookies.get(SESSION_COOKIE, ""),
    )
    if signed is None:
        context.signins.failed(account)
        return _login_page(request, context, 400, "That email and password do not match.", email)
    response = RedirectResponse("/admin/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=int(lifetime.total_seconds()),
        path="/admin",
        secure=_secure(context),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@router.post("/logout")
def logout(
    request: Request,
    context: Context,
    operator: Signed,
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf)
    with context.database.transaction() as session:
        operators.sign_out(session, request.state.session_token)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, context: Context, operator: Signed) -> Response:
    allowed(operator, Permission.VIEW)
    with context.database.read() as session:
        figures = activity(session, context.clock.now())
    return render(
        request,
        operator,
        "admin_overview.html",
        title="Overview",
        figures=figures,
        sent_chart=day_bars(figures.sent_per_day, "messages sent per day"),
        due_chart=day_bars(figures.due_per_day, "messages due per day"),
    )


def render(
    request: Request, operator: Operator, template: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """A page of a signed-in operator: with who they are, what they may do, and the form token."""
    return page(
        request,
        template,
        status_code=status_code,
        operator=operator,
        is_admin=may(Role(operator.role), Permission.MANAGE_OPERATORS),
        permitted=lambda permission: may(Role(operator.role), Permission(permission)),
        csrf=csrf_token(request.state.session_token),
        **values,
    )


def _login_page(
    request: Request,
    context: Context,
    status: int = 200,
    error: str = "",
    email: str = "",
    notice: str = "",
) -> HTMLResponse:
    return anonymous_page(
        request,
        context,
        "admin_login.html",
        status,
        title="Sign in",
        error=error,
        notice=notice,
        email=email[:320],
    )


def anonymous_page(
    request: Request, context: Context, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page whose form is sent before anyone is signed in (sign-in, choosing a password): its
    CSRF token is a double-submit one, signed by the server, in a cookie and in the form."""
    nonce = secrets.token_urlsafe(18)
    token = f"{nonce}.{_login_signature(context, nonce)}"
    response = page(request, template, status_code=status, csrf=token, **values)
    response.set_cookie(
        LOGIN_COOKIE, token, path="/admin", secure=_secure(context), httponly=True, samesite="lax"
    )
    return response


def anonymous_form_valid(request: Request, context: Context, csrf: str) -> bool:
    """Whether a form of an `anonymous_page` came back with the token its cookie holds, from a
    page of ours. A token pair is bound to no one (there is nobody yet), so a sibling subdomain
    could fetch one and plant its cookie; the browser's Origin header says where the form was."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in _own_origins(request, context):
        return False
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return _valid_login_token(context, cookie) and hmac.compare_digest(
        cookie.encode(), csrf.encode()
    )


def _own_origins(request: Request, context: Context) -> set[str]:
    """Where our own pages are: the public base URL, and the address the request came to (the
    same, unless a proxy stands in front)."""
    public = urlsplit(context.settings.base_url)
    return {f"{public.scheme}://{public.netloc}", str(request.base_url).rstrip("/")}


def _login_signature(context: WebContext, nonce: str) -> str:
    # Signed with the server's secret: a cookie planted by a neighbouring site (a sibling
    # subdomain can set cookies for ours) cannot carry a token this server would take.
    return hmac.new(context.csrf_key, nonce.encode(), "sha256").hexdigest()[:32]


def _valid_login_token(context: WebContext, token: str) -> bool:
    nonce, _, signature = token.partition(".")
    expected = _login_signature(context, nonce)
    return bool(nonce) and hmac.compare_digest(expected.encode(), signature.encode()[:64])


CONTENT_SECURITY_POLICY = "; ".join(
    (
        # Scripts only from our own files, never inline: a value that slipped past the escaping
        # could not run. Styles may be inline (the pages and the emails carry their own).
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        # A lesson's preview (a srcdoc frame, which inherits this policy) shows its images and fonts.
        "img-src 'self' data: https: http:",
        "font-src 'self' data: https:",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    )
)


def security_headers(response: Response) -> None:
    """What every page under /admin/ is sent with: never inside another site's frame (a sign-out
    button could be clicked through it), never cached (the pages list people's addresses), and
    no address of ours in the Referer of a link followed elsewhere."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"


def _secure(context: WebContext) -> bool:
    return context.settings.base_url.lower().startswith("https://")
