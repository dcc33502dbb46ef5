"""The dashboard's pages for subscribers in numbers: add one, import a CSV file, export a CSV file.

Thin shells like the rest of the dashboard: adding calls `app/subscriptions.subscribe` (what
`dripcourse subscribe` and `POST /api/subscribers` call), importing `app/roster.import_subscribers`
(`dripcourse subscribers import`) through `web/importjobs`, exporting `app/roster.export_rows` and
`write_csv` (`dripcourse subscribers export`). Adding and importing need the right to change
subscribers. So does exporting: a viewer reads the list on screen, but a file of everyone's
address leaves the system, so it is kept to the roles that run the list, and each export is in
the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from dripcourse.app import audit, roster, subscriptions
from dripcourse.courses.catalog import course_slugs
from dripcourse.domain.roles import Permission
from dripcourse.domain.validation import check_timezone, clean_name, normalise_email
from dripcourse.errors import BadInput, Conflict, DripcourseError, NotFound
from dripcourse.store.models import Operator
from dripcourse.web.context import WebContext, status_of
from dripcourse.web.dashboard import MAX_FIELD, Context, Signed, allowed, check_csrf, render
from dripcourse.web.importjobs import MAX_UPLOAD_BYTES, ImportJobs, UploadRefused
from dripcourse.web.public import ZONES

router = APIRouter(prefix="/admin", include_in_schema=False)

IMPORT_PATH = "/admin/subscribers/import"
MAX_UPLOAD_BODY = MAX_UPLOAD_BYTES + 64 * 1024
"""The request body of an import: the file, the other fields and the multipart framing."""
MAX_FILE_NAME = 200
CHUNK_CHARS = 64 * 1024
Consent = Literal["confirmed", "confirmation"]


def jobs_of(request: Request) -> ImportJobs:
    jobs: ImportJobs = request.app.state.imports
    return jobs


# -- add one ----------------------------------------------------------------------------------


@router.get("/subscribers/new", response_class=HTMLResponse)
def new_subscriber_form(request: Request, context: Context, operator: Signed) -> Response:
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    return _new_form(request, context, operator, {"consent": "confirmation"})


@router.post("/subscribers/new", response_class=HTMLResponse)
def add_subscriber(
    request: Request,
    context: Context,
    operator: Signed,
    email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    name: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    timezone: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    course: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    consent: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    values = {
        "email": email,
        "name": name,
        "timezone": timezone,
        "course": course,
        "consent": consent,
    }
    # Each field through its own check first, so that every bad field is named at once; the
    # operation checks them again with the same functions (domain/validation) and decides the rest.
    errors = _field_errors(values)
    if errors:
        return _new_form(request, context, operator, values, errors, 400)
    try:
        with context.database.transaction() as session:
            result = subscriptions.subscribe(
                session,
                email=email,
                course_slug=course,
                name=name or None,
                timezone=timezone.strip() or None,
                confirmed=consent == "confirmed",
                source="dashboard",
                now=context.clock.now(),
                actor=audit.operator_actor(operator.email),
            )
            person, state = result.enrollment.subscriber_id, result.enrollment.status
    except DripcourseError as exc:
        # A refusal that names no field is about the course when there is none, else the person.
        field = getattr(exc, "field", None) or ("course" if isinstance(exc, NotFound) else "email")
        return _new_form(request, context, operator, values, {field: str(exc)}, status_of(exc))
    if not (result.created or result.started or result.confirmation_queued):
        # Nothing was changed: say so beside the address rather than pretend it was added.
        already = f"{normalise_email(email)} is already enrolled in {course} ({state})"
        message = f"{already}; {result.confirmation_held}" if result.confirmation_held else already
        return _new_form(request, context, operator, values, {"email": message}, 409, person=person)
    if result.confirmation_queued:
        context.wake()
    return RedirectResponse(f"/admin/subscribers/{person}", status_code=303)


def _field_errors(values: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    checks: dict[str, Callable[[], object]] = {
        "email": lambda: normalise_email(values["email"]),
        "name": lambda: clean_name(values["name"] or None),
        "timezone": lambda: values["timezone"].strip() and check_timezone(values["timezone"]),
    }
    for field, check in checks.items():
        try:
            check()
        except BadInput as exc:
            errors[field] = str(exc)
    if not values["course"]:
        errors["course"] = "choose a course"
    if values["consent"] not in ("confirmed", "confirmation"):
        errors["consent"] = "say whether they have agreed already or should get the email"
    return errors


def _new_form(
    request: Request,
    context: WebContext,
    operator: Operator,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    person: int | None = None,
) -> HTMLResponse:
    return render(
        request,
        operator,
        "admin_subscriber_new.html",
        status_code=status,
        title="Add a subscriber",
        section="subscribers",
        values=values,
        errors=errors or {},
        courses=_course_slugs(context),
        zones=ZONES,
        person=person,
    )


def _course_slugs(context: WebContext) -> list[str]:
    with context.database.read() as session:
        return course_slugs(session)


# -- import -----------------------------------------------------------------------------------


@router.get("/subscribers/import", response_class=HTMLResponse)
def import_form(request: Request, context: Context, operator: Signed) -> Response:
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    return _import_form(request, context, operator, {"consent": "confirmation"})


@router.post(IMPORT_PATH.removeprefix("/admin"), response_class=HTMLResponse)
def import_upload(
    request: Request,
    context: Context,
    operator: Signed,
    file: UploadFile | None = None,
    course: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    consent: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    values = {"course": course, "consent": consent}
    errors: dict[str, str] = {}
    if file is None or not file.filename:
        errors["file"] = "choose a CSV file"
    if course not in _course_slugs(context):
        errors["course"] = f"no course {course[:64]!r}" if course else "choose a course"
    if consent not in ("confirmed", "confirmation"):
        errors["consent"] = "say whether they have all agreed already or should get the email"
    if errors or file is None:
        return _import_form(request, context, operator, values, errors, 400)
    try:
        job = jobs_of(request).start(
            file.file,
            _shown_name(file.filename or ""),
            course=course,
            confirmed=consent == "confirmed",
            actor=audit.operator_actor(operator.email),
            database=context.database,
            clock=context.clock,
            wake=context.wake,
        )
    except UploadRefused as exc:
        return _import_form(request, context, operator, values, {"file": str(exc)}, exc.status)
    except Conflict as exc:
        return _import_form(request, context, operator, values, {"file": str(exc)}, 409)
    return RedirectResponse(f"/admin/imports/{job.id}", status_code=303)


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def import_status(
    request: Request,
    operator: Signed,
    job_id: Annotated[str, Path(max_length=64)],
    refresh: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """How far the import is, then its report. While it runs, the page asks the browser to load
    it again every second (the `Refresh` header, which every browser follows, no JavaScript),
    unless the operator turned that off: WCAG 2.2.1 wants a page that changes by itself to let
    them stop it."""
    allowed(operator, Permission.VIEW)
    job = jobs_of(request).get(job_id)
    if job is None:
        raise NotFound("no such import: it finished more than an hour ago, or never was")
    # Read once: the import runs in another thread, and the page and its Refresh header must
    # tell the same story (a job that ends between two reads would refresh its own report).
    running = job.running
    refreshing = running and refresh != "off"
    response = render(
        request,
        operator,
        "admin_import_status.html",
        title="Import",
        section="subscribers",
        job=job,
        running=running,
        refreshing=refreshing,
    )
    if refreshing:
        response.headers["Refresh"] = "1"
    return response


def _import_form(
    request: Request,
    context: WebContext,
    operator: Operator,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        operator,
        "admin_import.html",
        status_code=status,
        title="Import subscribers",
        section="subscribers",
        values=values,
        errors=errors or {},
        courses=_course_slugs(context),
        max_megabytes=MAX_UPLOAD_BYTES // (1024 * 1024),
    )


def _shown_name(name: str) -> str:
    """The uploaded file's name as the browser gave it, without any folder, cut to a length that
    fits a line (it is shown escaped, and the audit log escapes control characters)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:MAX_FILE_NAME] or "upload.csv"


# -- export -----------------------------------------------------------------------------------


@router.post("/subscribers/export")
def export(
    request: Request,
    context: Context,
    operator: Signed,
    course: Annotated[str, Form(max_length=64)] = "",
    status: Annotated[str, Form(max_length=32)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """A POST with the form token: an export is recorded in the audit log, and a link on another
    site must not make a signed-in browser take one (SameSite=Lax lets a GET through)."""
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    with context.database.transaction() as session:
        # The filters are checked (an unknown course is a 404 page) and the export recorded
        # before the first byte goes.
        roster.export_rows(session, course or None, status or None)
        roster.record_export(
            session,
            context.clock.now(),
            audit.operator_actor(operator.email),
            course or None,
            status or None,
        )
    today = context.clock.now().date().isoformat()
    name = "-".join(part for part in ("subscribers", course, status, today) if part)
    return StreamingResponse(
        _csv_chunks(context, course or None, status or None),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _csv_chunks(context: WebContext, course: str | None, status: str | None) -> Iterator[bytes]:
    """The file in pieces of about 64 KB, written by the command line's `csv_lines` from rows read
    in one read-only transaction: a list of a million people is never held whole."""
    with context.database.read() as session:
        piece: list[str] = []
        size = 0
        for line in roster.csv_lines(roster.export_rows(session, course, status)):
            piece.append(line)
            size += len(line)
            if size >= CHUNK_CHARS:
                yield "".join(piece).encode()
                piece, size = [], 0
        yield "".join(piece).encode()
