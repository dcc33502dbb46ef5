"""The authors' preview server (`dripcourse preview`): the courses and lessons as they are on disk,
each lesson as the email a subscriber gets (at phone and desktop width, and its text part), with
its checks beside it, reloaded in the browser whenever a file under the courses folder changes.

A thin shell over `web/preview_lessons.py`, with no database and no real secret: links in the
preview are signed with a throwaway key and lead nowhere. Pages ask `/version` every second and
reload when the files' stamp changes; `location.reload()` keeps the query string, and with it the
sample subscriber. The spam score takes about a second, so the page fetches it separately.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from dripcourse.clock import Clock, SystemClock
from dripcourse.config import Settings
from dripcourse.devtools.spamcheck import SpamCheckError, spamassassin_available
from dripcourse.errors import BadInput, DripcourseError, NotFound
from dripcourse.mail.builder import MessageBuilder
from dripcourse.mail.tokens import Signer
from dripcourse.web.preview_lessons import (
    GMAIL_CLIP_BYTES,
    LessonPreview,
    Sample,
    SpamScores,
    Workspace,
    preview_lesson,
    sample_of,
)
from dripcourse.web.public import ZONES

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["kb"] = lambda size: f"{size / 1024:,.1f} KB"


@dataclass
class PreviewContext:
    workspace: Workspace
    builder: MessageBuilder
    clock: Clock = field(default_factory=SystemClock)
    spam: SpamScores = field(default_factory=SpamScores)


def create_preview_app(
    settings: Settings,
    path: Path | None = None,
    clock: Clock | None = None,
    spam: SpamScores | None = None,
    address: str = "",
) -> FastAPI:
    """The preview of the courses under `settings.courses_dir`, or of `path` (a course folder, or
    a folder of courses). `address`: where it is reached (`http://127.0.0.1:8025`), for the
    lessons' images, which it serves itself; empty: `settings.base_url`."""
    app = FastAPI(title="dripcourse preview", docs_url=None, redoc_url=None, openapi_url=None)
    media_root = f"{(address or settings.base_url).rstrip('/')}/media"
    app.state.preview = PreviewContext(
        workspace=Workspace(settings.courses_dir, path, media_root),
        # A throwaway key: the preview's links must look real, but nobody may ever use them.
        builder=MessageBuilder(Signer(secrets.token_urlsafe(32)), settings.base_url),
        clock=clock or SystemClock(),
        spam=spam or SpamScores(),
    )
    _add_routes(app)
    _install_error_handlers(app)
    return app


def context_of(request: Request) -> PreviewContext:
    context: PreviewContext = request.app.state.preview
    return context


Context = Annotated[PreviewContext, Depends(context_of)]


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("stamp", context_of(request).workspace.stamp())
    values.setdefault("where", context_of(request).workspace.where)
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def _add_routes(app: FastAPI) -> None:
    # Plain `def` handlers: they read files and render templates, so they run in the thread pool.
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, context: Context) -> HTMLResponse:
        snapshot = context.workspace.snapshot()
        now = context.clock.now()
        subjects = {
            draft.slug: draft.subjects(
                sample_of(None, None, draft.default_zone), context.builder, now
            )
            for draft in snapshot.courses
        }
        return page(
            request,
            "preview_index.html",
            stamp=snapshot.stamp,
            courses=snapshot.courses,
            subjects=subjects,
            root=context.workspace.root,
        )

    @app.get("/version")
    def version(context: Context) -> JSONResponse:
        """The stamp of the files, which every page polls to know when to reload."""
        return JSONResponse(
            {"version": context.workspace.stamp()}, headers={"Cache-Control": "no-store"}
        )

    @app.get("/media/{slug}/{name}")
    def image(slug: str, name: str, context: Context) -> Response:
        """A lesson's image as `courses sync` would store it, from the files as they are now."""
        found = context.workspace.snapshot().course(slug).image(name)
        # Not cached: the author may change the image and look again under the same name.
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        return Response(found.data, media_type=found.content_type, headers=headers)

    @app.get("/courses/{slug}")
    def course(slug: str, context: Context) -> RedirectResponse:
        draft = context.workspace.snapshot().course(slug)
        if not draft.source.lessons:
            return RedirectResponse("/", status_code=303)
        return RedirectResponse(f"/courses/{slug}/lessons/{draft.source.lessons[0].key}", 303)

    @app.get("/courses/{slug}/lessons/{key}", response_class=HTMLResponse)
    def lesson(
        request: Request,
        slug: str,
        key: str,
        context: Context,
        name: str | None = None,
        timezone: str | None = None,
    ) -> HTMLResponse:
        snapshot = context.workspace.snapshot()
        draft = snapshot.course(slug)
        error = None
        try:
            sample = sample_of(name, timezone, draft.default_zone)
        except BadInput as exc:
            # Said beside the form; the email meanwhile shows the default sample subscriber.
            error = sentence(str(exc))
            sample = sample_of(None, None, draft.default_zone)
        preview = preview_lesson(draft, key, sample, context.builder, context.clock.now())
        return page(
            request,
            "preview_lesson.html",
            status_code=400 if error else 200,
            stamp=snapshot.stamp,
            preview=preview,
            error=error,
            typed={"name": sample.name if name is None else name, "timezone": timezone},
            query=_query(sample),
            zones=ZONES,
            clip_limit=GMAIL_CLIP_BYTES,
        )

    @app.get("/courses/{slug}/lessons/{key}/spam", response_class=HTMLResponse)
    def spam(
        request: Request,
        slug: str,
        key: str,
        context: Context,
        name: str | None = None,
        timezone: str | None = None,
    ) -> HTMLResponse:
        """The spam score as a piece of HTML, fetched by the lesson page once it has loaded."""
        values: dict[str, Any] = {"installed": spamassassin_available()}
        try:
            preview = _preview(context, slug, key, name, timezone)
        except DripcourseError as exc:
            status = 404 if isinstance(exc, NotFound) else 400
            return page(request, "preview_spam.html", status, failure=str(exc), **values)
        if preview.email is None:
            values["failure"] = "the lesson has problems; fix them to see its spam score"
        elif values["installed"]:
            try:
                values["report"] = context.spam.report(preview.email.message)
            except (SpamCheckError, subprocess.TimeoutExpired, OSError) as exc:
                values["failure"] = f"SpamAssassin could not score this message: {exc}"
        return page(request, "preview_spam.html", **values)

    @app.get("/courses/{slug}/lessons/{key}/message.eml")
    def message(
        slug: str, key: str, context: Context, name: str | None = None, timezone: str | None = None
    ) -> Response:
        """The whole message as sent, to open in a real mail client."""
        preview = _preview(context, slug, key, name, timezone)
        if preview.email is None:
            raise BadInput(
                f"lesson {key!r} cannot be rendered: {context.workspace.where(preview.problems[0])}"
            )
        return Response(
            preview.email.message,
            media_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="{slug}-{key}.eml"'},
        )


def _preview(
    context: PreviewContext, slug: str, key: str, name: str | None, timezone: str | None
) -> LessonPreview:
    draft = context.workspace.snapshot().course(slug)
    sample = sample_of(name, timezone, draft.default_zone)
    return preview_lesson(draft, key, sample, context.builder, context.clock.now())


def _query(sample: Sample) -> str:
    """The sample subscriber as a query string, carried by the links between lessons."""
    return urlencode({"name": sample.name, "timezone": sample.timezone})


_TITLES = {400: "This did not work", 404: "Not found"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DripcourseError)
    async def dripcourse_error(request: Request, exc: DripcourseError) -> Response:
        return _error(request, 404 if isinstance(exc, NotFound) else 400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail))


def _error(request: Request, status: int, message: str) -> Response:
    return page(
        request,
        "preview_message.html",
        status_code=status,
        title=_TITLES.get(status, "Sorry"),
        text=sentence(message),
    )


def sentence(message: str) -> str:
    """An operation's error as a page says it: a capital first, a full stop last."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
