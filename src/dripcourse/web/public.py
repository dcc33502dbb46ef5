"""Public pages for recipients: sign up, confirm, unsubscribe, view a lesson online, follow a
tracked link.

HTML without JavaScript (one optional line preselects the visitor's time zone). Every handler is a
thin shell: parse, call one operation in one transaction, render the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from dripcourse.app import clicks, subscriptions
from dripcourse.app.lessons import view_online
from dripcourse.courses.catalog import get_course
from dripcourse.errors import BadInput, Conflict, NotFound
from dripcourse.mail.builder import MessageBuilder
from dripcourse.mail.tokens import Purpose
from dripcourse.store.models import Course, Enrollment
from dripcourse.web.context import WebContext, context_of

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
ZONES = sorted(
    zone for zone in available_timezones() if "/" in zone and not zone.startswith("Etc/")
)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ONE_CLICK = "One-Click"

Context = Annotated[WebContext, Depends(context_of)]


class TooManyRequests(Exception):
    """The client sent more sign-ups than the rate limit allows."""


class RequestTooLarge(HTTPException):
    """The request body grew past the size cap while it was being read (a chunked upload). An
    HTTPException, so that FastAPI's own body parsing (the operator API) lets it through too."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page of web/templates. A course is given to them as `CourseSettings.to_json()`: the
    shape lesson templates see too (`course.theme.accent`, `course.get("language")`)."""
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def evidence_of(request: Request) -> subscriptions.Evidence:
    return subscriptions.Evidence(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request, context: Context, course: str = "") -> HTMLResponse:
    with context.database.transaction() as session:
        settings = _course(session, course).settings
    return page(
        request,
        "subscribe.html",
        course=settings.to_json(),
        slug=course,
        zones=ZONES,
        values={"timezone": settings.timezone},
    )


@router.post("/subscribe")
async def subscribe(request: Request, context: Context) -> Response:
    """The sign-up form's target, and the same for JSON. Every accepted request gets the same
    answer, whether the address is new, pending, subscribed or suppressed: nobody learns which."""
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    fields = await _fields(request, wants_json)
    client = request.client.host if request.client else "unknown"
    if not context.limiter.allow(client):
        raise TooManyRequests()
    course = str(fields.get("course", ""))
    try:
        # The database work runs in the thread pool: SQLite would block the event loop.
        double_opt_in, queued = await run_in_threadpool(
            _sign_up, context, course, fields, evidence_of(request)
        )
    except BadInput as exc:
        if wants_json:
            raise
        return await run_in_threadpool(_form_again, request, context, course, fields, str(exc))
    if queued:
        context.wake()
    message = (
        "Thanks! Check your inbox: we sent you an email with a link to confirm your subscription."
        if double_opt_in
        else "Thanks! You are subscribed: the first lesson is on its way."
    )
    if wants_json:
        return JSONResponse({"status": "accepted", "message": message}, status_code=202)
    return page(request, "message.html", title="Almost there", text=message)


FIELD_PREFIX = "field."


def custom_fields_of(fields: dict[str, Any]) -> dict[str, object]:
    """The course's custom fields among what was posted: `field.level` (a select of the form, or a
    hidden input on the clinic's own site; the same key in JSON). Checked by `subscribe`."""
    return {
        key.removeprefix(FIELD_PREFIX): value
        for key, value in fields.items()
        if key.startswith(FIELD_PREFIX)
    }


def _sign_up(
    context: WebContext, course: str, fields: dict[str, Any], evidence: subscriptions.Evidence
) -> tuple[bool, bool]:
    """(whether the course asks for confirmation, whether a confirmation email was queued)"""
    with context.database.transaction() as session:
        double_opt_in = _course(session, course).settings.double_opt_in
        try:
            result = subscriptions.subscribe(
                session,
                email=str(fields.get("email", "")),
                course_slug=course,
                name=str(fields.get("name", "")),
                timezone=str(fields.get("timezone", "")) or None,
                confirmed=not double_opt_in,
                own_sign_up=True,
                source="http",
                evidence=evidence,
                now=context.clock.now(),
                fields=custom_fields_of(fields),
            )
        except Conflict:
            return double_opt_in, False  # suppressed: answered like any other sign-up
        return double_opt_in, result.confirmation_queued


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm(request: Request, token: str, context: Context) -> HTMLResponse:
    payload = context.signer.read(Purpose.CONFIRM, token, max_age=context.confirm_max_age)
    requested_at = context.signer.issued_at(Purpose.CONFIRM, token)
    with context.database.transaction() as session:
        enrollment = subscriptions.confirm_by_link(
            session,
            int(payload.get("e", 0)),
            context.clock.now(),
            evidence_of(request),
            requested_at,
        )
        title = enrollment.course.settings.title
    return page(
        request,
        "message.html",
        title="You're in",
        text=f"Thank you for confirming. {title} starts with the next lesson, "
        "sent to your inbox at the course's usual time in your time zone.",
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str, context: Context) -> HTMLResponse:
    """Only a page with a button: mail scanners fetch links, and a GET must never unsubscribe."""
    payload = context.signer.read(Purpose.UNSUBSCRIBE, token)
    with context.database.transaction() as session:
        enrollment = session.get(Enrollment, int(payload.get("e", 0)))
        course = enrollment.course.settings.to_json() if enrollment else None
    return page(request, "unsubscribe.html", course=course, token=token)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str, context: Context) -> HTMLResponse:
    """The page's button, and the RFC 8058 one-click endpoint (`List-Unsubscribe=One-Click`):
    no cookie, no confirmation, answers 200."""
    payload = context.signer.read(Purpose.UNSUBSCRIBE, token)
    form = await _form(request)
    everything = form.get("scope") == "all" and form.get("List-Unsubscribe") != ONE_CLICK
    title = await run_in_threadpool(_unsubscribe, context, int(payload.get("e", 0)), everything)
    text = (
        "You will get no more email from us."
        if everything
        else f"You will get no more lessons of {title}."
    )
    return page(request, "message.html", title="You are unsubscribed", text=text)


def _unsubscribe(context: WebContext, enrollment_id: int, everything: bool) -> str:
    """The unsubscribe, in one transaction; returns the course's title for the answer."""
    with context.database.transaction() as session:
        enrollment = subscriptions.unsubscribe_by_link(
            session, enrollment_id, context.clock.now(), everything
        )
        return enrollment.course.settings.title if enrollment else "this course"


@router.get("/view/{token}", response_class=HTMLResponse)
def view(request: Request, token: str, context: Context) -> HTMLResponse:
    payload = context.signer.read(Purpose.VIEW, token)
    builder = MessageBuilder(
        context.signer, context.settings.base_url, media_url=context.settings.media_url
    )
    with context.database.transaction() as session:
        rendered = view_online(session, builder, int(payload.get("d", 0)))
    return HTMLResponse(rendered.html)


@router.get("/c/{token}")
def follow_link(token: str, context: Context, u: str = "") -> RedirectResponse:
    """A tracked link of a lesson (`clicks.py`): to the target its signature names, and no other.
    A link that was changed gets a 400 page, never a redirect."""
    signer = context.signer  # reads the secret key in a transaction of its own, before ours
    with context.database.transaction() as session:
        target = clicks.follow(session, signer, token, u, context.clock.now())
    # 302 keeps the GET; no-store, so that every follow comes back here and the count is exact.
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


async def _fields(request: Request, wants_json: bool) -> dict[str, Any]:
    if wants_json:
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise BadInput("the body is not valid JSON") from None
        if not isinstance(data, dict) or not all(isinstance(v, str | None) for v in data.values()):
            raise BadInput("send a JSON object of text fields: email, name, timezone, course")
        return {k: v or "" for k, v in data.items()}
    return dict(await _form(request))


async def read_form(request: Request) -> FormData:
    """A posted form (`BadInput` if it cannot be read, 415 if it is no form): the sign-up's reading,
    for the dashboard's forms whose field names come from a course."""
    return await _form(request)


async def _form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(FORM_TYPES):
        raise UnsupportedMediaType(content_type or "none")
    try:
        return await request.form(max_files=0, max_fields=20)
    except RequestTooLarge:
        raise
    except Exception as exc:  # malformed multipart bodies raise several kinds of errors
        raise BadInput(f"the form data could not be read: {exc}") from None


class UnsupportedMediaType(Exception):
    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"unsupported content type {content_type!r}: send a form "
            "(application/x-www-form-urlencoded or multipart/form-data) or application/json"
        )


def _form_again(
    request: Request, context: WebContext, course: str, fields: dict[str, Any], error: str
) -> HTMLResponse:
    with context.database.transaction() as session:
        settings = _course(session, course).settings
    return page(
        request,
        "subscribe.html",
        status_code=400,
        course=settings.to_json(),
        slug=course,
        zones=ZONES,
        values={k: str(v)[:300] for k, v in fields.items()},
        error=error[:1].upper() + error[1:],
    )


def _course(session: Session, slug: str) -> Course:
    # get_course's message lists every course and names a CLI command: right for an operator,
    # not for a visitor who followed a broken link.
    try:
        return get_course(session, slug)
    except NotFound:
        raise NotFound("there is no such course: please check the link you followed") from None
