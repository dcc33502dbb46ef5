"""The FastAPI application: routes, and the one place where errors become HTTP answers.

`DripcourseError`s become 4xx (400 bad input, 404 not found, 409 conflict): JSON under `/api/`, a
friendly page elsewhere. Request bodies are capped in size; a flood of sign-ups gets 429.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dripcourse import __version__
from dripcourse.app.providers.sns_certificates import SigningCertificates
from dripcourse.clock import Clock
from dripcourse.config import Settings
from dripcourse.errors import DripcourseError
from dripcourse.store.db import Database
from dripcourse.web import (
    api,
    apidocs,
    dashboard,
    dashboard_courses,
    dashboard_deliveries,
    dashboard_operators,
    dashboard_people,
    dashboard_roster,
    early,
    health,
    hooks,
    media,
    metrics,
    public,
)
from dripcourse.web.accesslog import AccessLog
from dripcourse.web.context import SignInLimits, WebContext, status_of
from dripcourse.web.importjobs import TOO_LARGE, ImportJobs
from dripcourse.web.ratelimit import RateLimiter

MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings,
    database: Database,
    clock: Clock,
    wake: Callable[[], None] = lambda: None,
    access_log: Callable[[str], None] | None = None,
    scheduler_alive: Callable[[], bool] | None = None,
    sns_transport: httpx.BaseTransport | None = None,
) -> FastAPI:
    """`scheduler_alive`: given when this process runs the scheduler, for `/readyz`;
    `sns_transport`: how SNS's signing certificates are fetched (httpx's default; tests give an
    `httpx.MockTransport` standing in for AWS)."""
    app = FastAPI(
        title="dripcourse",
        version=__version__,
        description="Operator API of dripcourse: subscribers, enrolments, courses, lessons, "
        "deliveries. Every call needs `Authorization: Bearer <DRIPCOURSE_API_TOKEN>`.",
        docs_url=None,  # served by `apidocs`, from our own files
        redoc_url=None,
    )
    apidocs.install(app)
    app.state.context = WebContext(
        settings=settings,
        database=database,
        clock=clock,
        wake=wake,
        limiter=RateLimiter(settings.signup_rate_per_minute, timedelta(minutes=1)),
        signins=SignInLimits.per_minute(settings.signin_rate_per_minute),
        sns_certificates=SigningCertificates(settings.sns_cert_dir, sns_transport),
    )
    app.state.readiness = health.Readiness(database, scheduler_alive)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(public.router)
    app.include_router(early.router)
    app.include_router(media.router)
    app.include_router(hooks.router)
    app.include_router(api.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_roster.router)  # before /admin/subscribers/{id}
    app.include_router(dashboard_people.router)
    app.include_router(dashboard_operators.router)
    app.include_router(dashboard_deliveries.router)
    app.include_router(dashboard_courses.router)
    app.state.imports = ImportJobs()
    app.mount("/admin/static", dashboard.STATIC, name="admin-static")
    _install_error_handlers(app)
    # Added first, so it sits inside the one below, next to the handlers that read the body.
    app.add_middleware(LimitStreamedBody, limit=MAX_BODY_BYTES)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length", "0")
        limit = body_limit(request.url.path)
        if not length.isdigit() or int(length) > limit:
            if request.url.path == dashboard_roster.IMPORT_PATH:
                return _error(request, 413, TOO_LARGE)
            return _error(request, 413, f"the request body is larger than {limit} bytes")
        return await call_next(request)

    @app.middleware("http")
    async def dashboard_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/admin"):
            dashboard.security_headers(response)
        return response

    if access_log is not None:
        app.add_middleware(AccessLog, write=access_log)  # outermost: it sees every answer
    return app


def body_limit(path: str, default: int = MAX_BODY_BYTES) -> int:
    """The size cap of a request body: the dashboard's CSV upload and a provider's batch of events
    may be larger than a form."""
    if path.startswith(hooks.PREFIX):
        return hooks.MAX_HOOK_BODY
    return dashboard_roster.MAX_UPLOAD_BODY if path == dashboard_roster.IMPORT_PATH else default


class LimitStreamedBody:
    """The Content-Length check above cannot see a chunked body, which has no length up front:
    this counts the bytes as the handler reads them and stops at the cap."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > body_limit(scope["path"], self.limit):
                raise public.RequestTooLarge(body_limit(scope["path"], self.limit))
            return message

        await self.app(scope, counted, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DripcourseError)
    async def dripcourse_error(request: Request, exc: DripcourseError) -> Response:
        return _error(request, status_of(exc), str(exc))

    @app.exception_handler(public.TooManyRequests)
    async def too_many(request: Request, exc: public.TooManyRequests) -> Response:
        response = _error(request, 429, "too many sign-ups from your address; try again later")
        response.headers["Retry-After"] = "60"
        return response

    @app.exception_handler(dashboard.SignInRequired)
    async def sign_in_first(request: Request, exc: dashboard.SignInRequired) -> Response:
        return RedirectResponse("/admin/login", status_code=303)

    @app.exception_handler(dashboard.Forbidden)
    async def forbidden(request: Request, exc: dashboard.Forbidden) -> Response:
        return _error(request, 403, "your role does not allow this, or the form had expired")

    @app.exception_handler(public.UnsupportedMediaType)
    async def media_type(request: Request, exc: public.UnsupportedMediaType) -> Response:
        return _error(request, 415, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": jsonable_errors(exc)}, status_code=422)
        return _error(request, 400, "the request is not complete: " + _summary(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        response = _error(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response


def _error(request: Request, status: int, message: str) -> Response:
    # A JSON request gets a JSON error even when its Accept header is the usual */*.
    if _is_api(request) or any(
        request.headers.get(name, "").startswith("application/json")
        for name in ("accept", "content-type")
    ):
        return JSONResponse({"error": message}, status_code=status)
    return public.page(
        request,
        "message.html",
        status_code=status,
        title=_TITLES.get(status, "Sorry"),
        text=message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."),
    )


_TITLES = {
    400: "This did not work",
    404: "Not found",
    409: "This did not work",
    403: "Not allowed",
    413: "Too much data",
    415: "Unsupported request",
    429: "Please slow down",
}


def _is_api(request: Request) -> bool:
    # /metrics is read by Prometheus, not a person: its refusals are JSON like the API's.
    return request.url.path.startswith("/api/") or request.url.path == "/metrics"


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]


def _summary(exc: RequestValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
        for error in exc.errors()
    )
