"""The dashboard's pages about people: the subscribers (search, filters, paging), one subscriber
(their enrolments' timelines in their zone and UTC, the audit entries about them, and the actions
pause, resume, unsubscribe, queue a lesson, change name or time zone, forget), and the audit log.
Thin shells over `app/` like the rest of `dashboard.py`, whose sign-in, CSRF and role checks they
use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dripcourse.app import (
    audit,
    custom_fields,
    lessons,
    overview,
    people,
    subscriptions,
    timeline,
)
from dripcourse.app.audience_plans import Skip
from dripcourse.domain.enrolment import Change
from dripcourse.domain.roles import Permission, Role, may
from dripcourse.domain.schedule import PlannedLesson
from dripcourse.domain.validation import MAX_NAME, mailbox_key, parse_local_instant
from dripcourse.errors import BadInput, DripcourseError
from dripcourse.store.models import EnrollmentStatus, Operator
from dripcourse.web import public
from dripcourse.web.context import status_of
from dripcourse.web.dashboard import (
    MAX_FIELD,
    MAX_ID,
    Context,
    Signed,
    allowed,
    check_csrf,
    render,
)

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE_SIZE = 50
STATUSES = [status.value for status in EnrollmentStatus]
Action = Literal["pause", "resume", "unsubscribe"]
CHANGES = {"pause": Change.PAUSE, "resume": Change.RESUME, "unsubscribe": Change.LEAVE}
ACTIONS = {
    "pause": subscriptions.pause_enrollment,
    "resume": subscriptions.resume_enrollment,
    "unsubscribe": subscriptions.unsubscribe_enrollment,
}


@router.get("/subscribers", response_class=HTMLResponse)
def subscribers(
    request: Request,
    context: Context,
    operator: Signed,
    q: Annotated[str, Query(max_length=320)] = "",
    course: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
    after: Annotated[str, Query(max_length=320)] = "",
    done: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    allowed(operator, Permission.VIEW)
    error = ""
    with context.database.read() as session:
        courses = [summary.course.slug for summary in overview.courses(session)]
        try:
            page = overview.subscriber_page(
                session,
                search=q,
                course_slug=course or None,
                status_filter=status or None,
                after=after,
                limit=PAGE_SIZE,
            )
        except DripcourseError as exc:
            error, page = str(exc), overview.SubscriberPage([], None)
    return render(
        request,
        operator,
        "admin_subscribers.html",
        status_code=400 if error else 200,
        title="Subscribers",
        page=page,
        error=error,
        q=q,
        course=course,
        status=status,
        courses=courses,
        statuses=STATUSES,
        done=done,
    )


@router.get("/subscribers/{subscriber_id}", response_class=HTMLResponse)
def subscriber(
    request: Request,
    context: Context,
    operator: Signed,
    subscriber_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    allowed(operator, Permission.VIEW)
    return _subscriber_page(request, context, operator, subscriber_id)


# Before the route of the other actions, whose `{action}` would take "queue" too.
@router.post("/subscribers/{subscriber_id}/enrollments/{course}/queue")
def queue_lesson(
    request: Request,
    context: Context,
    operator: Signed,
    subscriber_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    course: Annotated[str, Path(max_length=64)],
    lesson: Annotated[str, Form(max_length=100)] = "",
    at: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """Owe lesson N to this person now, or at a time typed in their zone."""
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_LESSONS)
    now = context.clock.now()

    def queue(session: Session) -> bool:
        person = people.get_subscriber(session, subscriber_id)
        when = parse_local_instant(at, person.timezone) if at.strip() else now
        actor = audit.operator_actor(operator.email)
        lessons.queue_lesson(session, course, lesson, when, to=person.email, actor=actor, now=now)
        return when <= now  # due now: the scheduler is woken to send it

    return _change(request, context, operator, subscriber_id, course, queue)


@router.post("/subscribers/{subscriber_id}/enrollments/{course}/fields")
async def change_fields(
    request: Request,
    context: Context,
    operator: Signed,
    subscriber_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    course: Annotated[str, Path(max_length=64)],
) -> Response:
    """Set this enrolment's custom field values (`field.<name>`; empty: back to the default). The
    names come from the course, so the form is read as a whole rather than field by field."""
    form = await public.read_form(request)
    check_csrf(request, str(form.get("csrf", "")))
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    given = public.custom_fields_of({key: str(value) for key, value in form.items()})

    def change(session: Session) -> bool:
        actor = audit.operator_actor(operator.email)
        custom_fields.change_fields(
            session, subscriber_id, course, given, context.clock.now(), actor=actor
        )
        return False

    return await run_in_threadpool(
        _change, request, context, operator, subscriber_id, course, change
    )


@router.post("/subscribers/{subscriber_id}/enrollments/{course}/{action}")
def change_enrollment(
    request: Request,
    context: Context,
    operator: Signed,
    subscriber_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    course: Annotated[str, Path(max_length=64)],
    action: Action,
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)

    def change(session: Session) -> bool:
        actor = audit.operator_actor(operator.email)
        ACTIONS[action](session, subscriber_id, course, context.clock.now(), actor=actor)
        return False

    return _change(request, context, operator, subscriber_id, course, change)


@router.post("/subscribers/{subscriber_id}/details", response_class=HTMLResponse)
def change_details(
    request: Request,
    context: Context,
    operator: Signed,
    subscriber_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    name: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    timezone: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """A new name or time zone, through the operation the API's PATCH calls."""
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    try:
        with context.database.transaction() as session:
            people.update_subscriber(
                session,
                subscriber_id,
                context.clock.now(),
                name=name,
                timezone=timezone,
                actor=audit.operator_actor(operator.email),
            )
    except DripcourseError as exc:
        field = getattr(exc, "field", None)
        if field is None:
            return _subscriber_page(
                request, context, operator, subscriber_id, ("", str(exc)), status_of(exc)
            )
        typed = {"name": name[:MAX_NAME], "timezone": timezone[:64]}
        return _subscriber_page(
            request, context, operator, subscriber_id, fields={field: str(exc)}, typed=typed
        )
    return RedirectResponse(f"/admin/subscribers/{subscriber_id}", status_code=303)


@router.post("/subscribers/{subscriber_id}/forget", response_class=HTMLResponse)
def forget(
    request: Request,
    context: Context,
    operator: Signed,
    subscriber_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    confirm: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """Erase the person (`dripcourse subscribers forget`), once their address is typed again."""
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_SUBSCRIBERS)
    try:
        with context.database.transaction() as session:
            address = people.get_subscriber(session, subscriber_id).email
            if mailbox_key(confirm.strip()) != mailbox_key(address):
                raise BadInput(f"type {address} exactly to confirm; nothing was erased")
            people.forget(
                session, address, context.clock.now(), actor=audit.operator_actor(operator.email)
            )
    except DripcourseError as exc:
        return _subscriber_page(
            request,
            context,
            operator,
            subscriber_id,
            fields={"confirm": str(exc)},
            status=status_of(exc),
        )
    return RedirectResponse("/admin/subscribers?done=forgotten", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, context: Context, operator: Signed) -> Response:
    allowed(operator, Permission.MANAGE_OPERATORS)
    with context.database.read() as session:
        entries = audit.entries(session, limit=200)
    return render(request, operator, "admin_audit.html", title="Audit log", entries=entries)


def _change(
    request: Request,
    context: Context,
    operator: Operator,
    subscriber_id: int,
    course: str,
    change: Callable[[Session], bool],
) -> Response:
    """Make `change` in one transaction, then back to the person's page; or that page with the
    reason beside the course when the operation refused. `change` says whether to wake the
    scheduler (something is due now)."""
    try:
        with context.database.transaction() as session:
            wake = change(session)
    except DripcourseError as exc:
        return _subscriber_page(
            request,
            context,
            operator,
            subscriber_id,
            error=(course, str(exc)),
            status=status_of(exc),
        )
    if wake:
        context.wake()
    return RedirectResponse(f"/admin/subscribers/{subscriber_id}", status_code=303)


def _subscriber_page(
    request: Request,
    context: Context,
    operator: Operator,
    subscriber_id: int,
    error: tuple[str, str] | None = None,
    status: int = 200,
    fields: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    """The person's page; `error` is (course, reason) of a refused enrolment action, `fields`
    the reasons beside the fields of the details and forget forms (400 when there are any)."""
    with context.database.read() as session:
        found = timeline.timeline_by_id(session, subscriber_id, context.clock.now())
        history = audit.entries(
            session, target=found.email, actions=audit.SUBSCRIBER_ACTIONS, limit=50
        )
        enrollments = {
            e.course.slug: e for e in people.get_subscriber(session, subscriber_id).enrollments
        }
        course_lessons = {
            slug: [(lesson.position, lesson.key) for lesson in e.course.current_lessons]
            for slug, e in enrollments.items()
        }
    return render(
        request,
        operator,
        "admin_subscriber.html",
        status_code=400 if fields and status == 200 else status,
        title=found.email,
        found=found,
        zone=ZoneInfo(found.timezone),
        history=history,
        enrollments=enrollments,
        # Which buttons each enrolment gets: the domain's transition table decides.
        can={
            slug: {name: change.applies_to(e.status) for name, change in CHANGES.items()}
            for slug, e in enrollments.items()
        },
        course_lessons=course_lessons,
        may_queue=may(Role(operator.role), Permission.CHANGE_LESSONS),
        queueable={slug: e.status in lessons.QUEUEABLE for slug, e in enrollments.items()},
        error=error,
        error_placed=error is not None and error[0] in enrollments,
        may_change=may(Role(operator.role), Permission.CHANGE_SUBSCRIBERS),
        fields=fields or {},
        typed=typed or {"name": found.name, "timezone": found.timezone},
        zones=public.ZONES,
        upcoming=upcoming,
    )


def upcoming(
    course: timeline.EnrollmentTimeline,
) -> list[tuple[int, PlannedLesson | None, Skip | None]]:
    """The lessons still to come and those skipped (for an audience they are outside), in course
    order: (number, planned lesson, skip), one of the two set."""
    rows: list[tuple[int, PlannedLesson | None, Skip | None]] = [
        (lesson.number, lesson, None) for lesson in course.owed
    ]
    rows += [(skip.number, None, skip) for skip in course.skipped] if course.owed else []
    return sorted(rows, key=lambda row: row[0])
