"""The operator API under /api/v1: JSON, bearer tokens, thin shells over the same operations.

Every handler parses, calls one operation in one transaction (committed inside the handler, before
the answer is sent) and formats the result with `payloads`. Errors raised by the operations become
400/404/409 in `app.py`; FastAPI's own validation of shapes and sizes is 422.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dripcourse.app import (
    audit,
    custom_fields,
    lessons,
    overview,
    people,
    subscriptions,
    timeline,
)
from dripcourse.app.report import course_report
from dripcourse.domain.validation import MAX_EMAIL, MAX_NAME
from dripcourse.mail.builder import MessageBuilder
from dripcourse.store.models import DeliveryStatus, EnrollmentStatus
from dripcourse.web.context import WebContext, context_of
from dripcourse.web.payloads import (
    MAX_ID,
    MAX_LESSON,
    MAX_OFFSET,
    MAX_SLUG,
    CourseDetail,
    CourseOut,
    DeliveryPage,
    EnrollmentOut,
    FieldChanges,
    LedgerEntry,
    LessonDetail,
    LessonOut,
    NewSubscriber,
    Preview,
    Problem,
    Queued,
    QueueRequest,
    StatusOut,
    SubscriberChanges,
    SubscriberDetail,
    SubscriberOut,
    SubscriberPage,
    ValidationProblem,
    lessons_of,
)
from dripcourse.web.report_payloads import LessonReportOut
from dripcourse.web.timeline_payloads import TimelineOut

bearer = HTTPBearer(auto_error=False, description="One of the DRIPCOURSE_API_TOKEN values.")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the bearer token is one of the configured ones (compared in constant time)."""
    context = context_of(request)
    given = credentials.credentials.encode() if credentials else b""
    matches = [hmac.compare_digest(given, token.encode()) for token in context.settings.api_tokens]
    if not credentials or not any(matches):
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


class TokenFirst(APIRoute):
    """Checks the token before anything else: FastAPI reads and parses a JSON body before it
    solves dependencies, which would answer a caller without a token about their body (422)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        known = _query_names(self.dependant)

        async def checked(request: Request) -> Response:
            require_token(request, await bearer(request))
            # A misspelt filter must not pass for no filter at all (and answer with everyone).
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                raise HTTPException(
                    status_code=400, detail=f"unknown query parameter: {', '.join(unknown)}"
                )
            return await handler(request)

        return checked


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], route_class=TokenFirst)
Context = Annotated[WebContext, Depends(context_of)]

_MEANING = {
    400: "Bad input: an invalid address, name or time zone, a body that cannot be read, or an "
    "unknown query parameter.",
    401: "No bearer token, or not one of DRIPCOURSE_API_TOKEN.",
    404: "No such subscriber, course, enrolment or lesson.",
    409: "The request clashes with the current state.",
    413: "The request body is larger than 64 KiB.",
    422: "The request does not have the documented shape: a missing or unknown field, a value "
    "of the wrong type or size, malformed JSON, or a body that is not JSON.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route (400 and 401 on every one: any route refuses an
    unknown query parameter)."""
    return {
        code: {
            "model": ValidationProblem if code == 422 else Problem,
            "description": _MEANING[code],
        }
        for code in sorted({400, 401, *codes})
    }


SubscriberId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The subscriber's id.", examples=[1])
]
Slug = Annotated[
    str, Path(max_length=MAX_SLUG, description="The course's slug.", examples=["runners"])
]
Which = Annotated[
    str,
    Path(
        max_length=MAX_LESSON,
        description="The lesson's number in the course, or its key.",
        examples=["3", "knees"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
CourseFilter = Annotated[
    str | None, Query(max_length=MAX_SLUG, description="Only this course.", examples=["runners"])
]


# -- subscribers ----------------------------------------------------------------------------------


@router.get("/subscribers", response_model=SubscriberPage, responses=errors(400, 404, 422))
def list_subscribers(
    context: Context,
    course: CourseFilter = None,
    status: Annotated[
        EnrollmentStatus | None, Query(description="Only enrolments in this status.")
    ] = None,
    email: Annotated[
        str | None,
        Query(
            max_length=MAX_EMAIL,
            description="Only the person with this address, in any spelling of its letters.",
            examples=["ada@example.com"],
        ),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> SubscriberPage:
    """Subscribers with their enrolments, by address. 404: no such course."""
    with context.database.transaction() as session:
        rows = overview.subscribers(session, course, status, limit, offset, email=email)
        items = [SubscriberOut.model_validate(subscriber) for subscriber, _ in rows]
    return SubscriberPage(items=items, limit=limit, offset=offset)


@router.post(
    "/subscribers",
    status_code=201,
    response_model=SubscriberOut,
    responses=errors(400, 404, 409, 413, 422),
)
def create_subscriber(body: NewSubscriber, context: Context) -> SubscriberOut:
    """Enrol a person in a course. Unless `confirmed`, a confirmation email is queued and the
    course starts when they confirm; enrolling someone again changes nothing. 409: the address
    is suppressed."""
    with context.database.transaction() as session:
        result = subscriptions.subscribe(
            session,
            email=body.email,
            course_slug=body.course,
            name=body.name,
            timezone=body.timezone,
            confirmed=body.confirmed,
            # No consent evidence: the request comes from the operator's tool, not the person.
            source="api",
            now=context.clock.now(),
            actor=audit.API_ACTOR,
            fields=body.fields,
        )
        created = SubscriberOut.model_validate(result.enrollment.subscriber)
    if result.confirmation_queued:
        context.wake()
    return created


@router.get(
    "/subscribers/{subscriber_id}", response_model=SubscriberDetail, responses=errors(404, 422)
)
def show_subscriber(subscriber_id: SubscriberId, context: Context) -> SubscriberDetail:
    """One subscriber: enrolments and every delivery, oldest first."""
    with context.database.transaction() as session:
        subscriber, deliveries = overview.subscriber_detail_by_id(session, subscriber_id)
        return SubscriberDetail.of_history(subscriber, deliveries)


@router.get(
    "/subscribers/{subscriber_id}/timeline", response_model=TimelineOut, responses=errors(404, 422)
)
def show_timeline(subscriber_id: SubscriberId, context: Context) -> TimelineOut:
    """Each enrolment lesson by lesson: the messages in the ledger (sent, failed, waiting), then
    the lessons still owed at their planned times, or why they are held."""
    with context.database.read() as session:
        return TimelineOut.of(timeline.timeline_by_id(session, subscriber_id, context.clock.now()))


@router.patch(
    "/subscribers/{subscriber_id}",
    response_model=SubscriberOut,
    responses=errors(400, 404, 413, 422),
)
def change_subscriber(
    subscriber_id: SubscriberId, body: SubscriberChanges, context: Context
) -> SubscriberOut:
    """Change a name or time zone. A new zone moves the next lesson to the send time of the same
    day in the new zone."""
    with context.database.transaction() as session:
        subscriber = people.update_subscriber(
            session,
            subscriber_id,
            context.clock.now(),
            name=body.name,
            timezone=body.timezone,
            actor=audit.API_ACTOR,
        )
        return SubscriberOut.model_validate(subscriber)


@router.delete(
    "/subscribers/{subscriber_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 422),
)
def delete_subscriber(subscriber_id: SubscriberId, context: Context) -> Response:
    """Erase a person and all their data: enrolments, consent evidence, delivery history. A
    suppression of the address stays, so it is never mailed again."""
    with context.database.transaction() as session:
        people.delete_subscriber(session, subscriber_id, context.clock.now(), actor=audit.API_ACTOR)
    return Response(status_code=204)


_ENROLMENT = "/subscribers/{subscriber_id}/enrollments/{course}"


@router.patch(_ENROLMENT, response_model=EnrollmentOut, responses=errors(400, 404, 413, 422))
def change_enrollment(
    subscriber_id: SubscriberId, course: Slug, body: FieldChanges, context: Context
) -> EnrollmentOut:
    """Change this enrolment's custom field values. The lessons owed from now on follow them: a
    lesson for an audience they have left is skipped, one they have joined is sent in its place."""
    with context.database.transaction() as session:
        enrollment = custom_fields.change_fields(
            session, subscriber_id, course, body.fields, context.clock.now(), actor=audit.API_ACTOR
        )
        return EnrollmentOut.model_validate(enrollment)


@router.post(f"{_ENROLMENT}/pause", response_model=EnrollmentOut, responses=errors(404, 409, 422))
def pause_enrollment(subscriber_id: SubscriberId, course: Slug, context: Context) -> EnrollmentOut:
    """Hold this enrolment's lessons until resumed. 409: it is not active."""
    with context.database.transaction() as session:
        enrollment = subscriptions.pause_enrollment(
            session, subscriber_id, course, context.clock.now(), actor=audit.API_ACTOR
        )
        return EnrollmentOut.model_validate(enrollment)


@router.post(f"{_ENROLMENT}/resume", response_model=EnrollmentOut, responses=errors(404, 409, 422))
def resume_enrollment(subscriber_id: SubscriberId, course: Slug, context: Context) -> EnrollmentOut:
    """Continue where they stopped, keeping the wait that was left. 409: it is not paused."""
    with context.database.transaction() as session:
        enrollment = subscriptions.resume_enrollment(
            session, subscriber_id, course, context.clock.now(), actor=audit.API_ACTOR
        )
        return EnrollmentOut.model_validate(enrollment)


@router.post(f"{_ENROLMENT}/unsubscribe", response_model=EnrollmentOut, responses=errors(404, 422))
def unsubscribe_enrollment(
    subscriber_id: SubscriberId, course: Slug, context: Context
) -> EnrollmentOut:
    """Leave this course (other courses go on; the address is not suppressed)."""
    with context.database.transaction() as session:
        enrollment = subscriptions.unsubscribe_enrollment(
            session, subscriber_id, course, context.clock.now(), actor=audit.API_ACTOR
        )
        return EnrollmentOut.model_validate(enrollment)


# -- courses and lessons --------------------------------------------------------------------------


@router.get("/courses", response_model=list[CourseOut], responses=errors())
def list_courses(context: Context) -> list[CourseOut]:
    """Every synced course, by slug, with its lesson and enrolment counts."""
    with context.database.transaction() as session:
        return [CourseOut.of(summary) for summary in overview.courses(session)]


@router.get("/courses/{course}", response_model=CourseDetail, responses=errors(404, 422))
def show_course(course: Slug, context: Context) -> CourseDetail:
    """A course's settings, enrolment counts and lessons."""
    with context.database.transaction() as session:
        return CourseDetail.of_summary(overview.course_summary(session, course))


@router.get(
    "/courses/{course}/report", response_model=list[LessonReportOut], responses=errors(404, 422)
)
def show_report(course: Slug, context: Context) -> list[LessonReportOut]:
    """Per lesson: messages sent, failed and bounced, people who unsubscribed right after it,
    and people who clicked one of its links (null unless the course tracks clicks)."""
    with context.database.read() as session:
        return [LessonReportOut.model_validate(row) for row in course_report(session, course)]


@router.get("/courses/{course}/lessons", response_model=list[LessonOut], responses=errors(404, 422))
def list_lessons(course: Slug, context: Context) -> list[LessonOut]:
    """The lessons in sending order, then the retired ones (number null)."""
    with context.database.transaction() as session:
        return lessons_of(overview.course_summary(session, course))


@router.get(
    "/courses/{course}/lessons/{lesson}", response_model=LessonDetail, responses=errors(404, 422)
)
def show_lesson(course: Slug, lesson: Which, context: Context) -> LessonDetail:
    """One lesson by number or key (a retired one by key only), with its front matter and body."""
    with context.database.transaction() as session:
        found_course, found = lessons.find_lesson(session, course, lesson)
        return LessonDetail.of_lesson(found, lessons.number_of(found_course, found))


@router.get(
    "/courses/{course}/lessons/{lesson}/preview",
    response_model=Preview,
    responses=errors(400, 404, 422),
)
def preview(
    course: Slug,
    lesson: Which,
    context: Context,
    name: Annotated[str, Query(max_length=MAX_NAME)] = "Sam Sample",
    email: Annotated[str, Query(max_length=MAX_EMAIL)] = "sample.reader@example.com",
) -> Preview:
    """The lesson rendered for a sample reader, as it would be sent."""
    # The signer reads the secret key in a transaction of its own: fetched before ours begins.
    builder = MessageBuilder(
        context.signer, context.settings.base_url, media_url=context.settings.media_url
    )
    with context.database.transaction() as session:
        found_course, found, rendered = lessons.preview(
            session, builder, course, lesson, email=email, name=name
        )
        number = lessons.number_of(found_course, found)
    return Preview(
        key=found.key,
        number=number,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
    )


@router.post(
    "/courses/{course}/lessons/{lesson}/queue",
    response_model=Queued,
    responses=errors(400, 404, 409, 413, 422),
)
def queue(course: Slug, lesson: Which, body: QueueRequest, context: Context) -> Queued:
    """Owe a lesson outside the rhythm to one person (`to`) or to everyone active (`all_active`),
    exactly one of them (else 400); their weekly lessons go on as before. 409: that person is not
    in the course any more."""
    now = context.clock.now()
    when = body.at or now
    with context.database.transaction() as session:
        count = lessons.queue_lesson(
            session,
            course,
            lesson,
            when,
            to=body.to,
            all_active=body.all_active,
            actor=audit.API_ACTOR,
            now=now,
        )
    if count and when <= now:
        context.wake()
    return Queued(queued=count)


# -- the ledger and the whole -------------------------------------------------------------------


@router.get("/deliveries", response_model=DeliveryPage, responses=errors(422))
def list_deliveries(
    context: Context,
    status: Annotated[DeliveryStatus | None, Query(description="Only in this status.")] = None,
    course: CourseFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DeliveryPage:
    """The ledger of messages, newest first."""
    with context.database.transaction() as session:
        rows = overview.deliveries(session, status, course, limit, offset)
        items = [LedgerEntry.of(delivery) for delivery in rows]
    return DeliveryPage(items=items, limit=limit, offset=offset)


@router.get("/status", response_model=StatusOut, responses=errors())
def show_status(context: Context) -> StatusOut:
    """Counts, recent failures, and when the next lesson is due."""
    with context.database.transaction() as session:
        return StatusOut.of(overview.status(session, context.clock.now()))


# RFC 9110, 15.5.6: a 405 answer lists in Allow every method the resource supports. The router
# would answer with the methods of the first route of the path only; a hidden route per path, after
# the real ones, takes every other method instead.
class MethodNotAllowed:
    """An ASGI app, so that its route takes any method (a function's route takes GET only)."""

    def __init__(self, allow: set[str]) -> None:
        self.allow = ", ".join(sorted(allow))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(status_code=405, headers={"Allow": self.allow})


def _refuse_other_methods(api: APIRouter) -> None:
    supported: dict[str, set[str]] = {}
    for route in api.routes:
        if isinstance(route, APIRoute):
            supported.setdefault(route.path, set()).update(route.methods or ())
    for path, methods in supported.items():
        api.routes.append(Route(path, MethodNotAllowed(methods), include_in_schema=False))


_refuse_other_methods(router)
