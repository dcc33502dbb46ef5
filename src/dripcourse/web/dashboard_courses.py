"""The dashboard's course pages: every synced course; one course with its lessons, the per-lesson
report beside a chart of how many people are still with it at each lesson, and the calendar of
someone subscribing now in a chosen zone; one lesson's email as the preview shows it, and "send a
test to me". Thin shells over `app/` like the rest of `dashboard.py`, whose sign-in, CSRF and role
checks they use: the report is `app/report.course_report` (what `dripcourse report` prints), the
calendar `app/timeline.course_calendar` (`dripcourse courses calendar`), the lesson
`app/lessons.preview` (`dripcourse lessons preview`) and the test `app/lessons.send_test`
(`dripcourse lessons send-test`).
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from dripcourse.app import audit, lessons, overview
from dripcourse.app.report import course_report
from dripcourse.app.timeline import Calendar, course_calendar
from dripcourse.domain.cohort import cohort_note
from dripcourse.domain.roles import Permission, Role, may
from dripcourse.domain.schedule import DAY_ABBREVIATIONS
from dripcourse.domain.validation import check_timezone
from dripcourse.errors import BadInput, DripcourseError, NotFound
from dripcourse.mail.builder import MessageBuilder
from dripcourse.store.models import Course, Operator
from dripcourse.web.charts import lesson_bars
from dripcourse.web.context import status_of
from dripcourse.web.dashboard import MAX_FIELD, Context, Signed, allowed, check_csrf, render
from dripcourse.web.preview import sentence
from dripcourse.web.public import ZONES

router = APIRouter(prefix="/admin", include_in_schema=False)

Slug = Annotated[str, Path(max_length=64)]
LessonKey = Annotated[str, Path(max_length=100)]


@router.get("/courses", response_class=HTMLResponse)
def courses(request: Request, context: Context, operator: Signed) -> Response:
    allowed(operator, Permission.VIEW)
    return _courses_page(request, context, operator)


@router.get("/courses/{slug}", response_class=HTMLResponse)
def course(
    request: Request,
    context: Context,
    operator: Signed,
    slug: Slug,
    zone: Annotated[str, Query(max_length=MAX_FIELD)] = "",
) -> Response:
    allowed(operator, Permission.VIEW)
    return _course_page(request, context, operator, slug, zone)


@router.get("/courses/{slug}/lessons/{key}", response_class=HTMLResponse)
def lesson(
    request: Request, context: Context, operator: Signed, slug: Slug, key: LessonKey
) -> Response:
    allowed(operator, Permission.VIEW)
    return _lesson_page(request, context, operator, slug, key)


@router.post("/courses/{slug}/lessons/{key}/test", response_class=HTMLResponse)
def send_test(
    request: Request,
    context: Context,
    operator: Signed,
    slug: Slug,
    key: LessonKey,
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
) -> Response:
    """The lesson, marked [Test], to the signed-in operator's own address, and nowhere else."""
    check_csrf(request, csrf)
    allowed(operator, Permission.CHANGE_LESSONS)
    try:
        sent = lessons.send_test(
            context.database,
            context.settings,
            slug,
            key,
            operator.email,
            now=context.clock.now(),
            actor=audit.operator_actor(operator.email),
        )
    except DripcourseError as exc:
        return _lesson_page(
            request, context, operator, slug, key, failure=str(exc), status=status_of(exc)
        )
    # The page itself, not a redirect: the confirmation says what the operation reported.
    return _lesson_page(request, context, operator, slug, key, sent=sent)


def _courses_page(
    request: Request, context: Context, operator: Operator, missing: str = ""
) -> HTMLResponse:
    with context.database.read() as session:
        summaries = overview.courses(session)
    return render(
        request,
        operator,
        "admin_courses.html",
        status_code=404 if missing else 200,
        title="Courses",
        section="courses",
        summaries=summaries,
        missing=missing,
    )


def _course_page(
    request: Request,
    context: Context,
    operator: Operator,
    slug: str,
    zone: str,
    missing: str = "",
) -> HTMLResponse:
    """The course's page; the list of courses saying so when there is no such course.
    `missing`: a lesson that was asked for and is not in the course (404)."""
    try:
        with context.database.read() as session:
            summary = overview.course_summary(session, slug)
            report = course_report(session, slug)
            keys = {lesson.key for lesson in summary.course.lessons}  # retired ones too
    except NotFound as exc:
        return _courses_page(request, context, operator, missing=sentence(str(exc)))
    course = summary.course
    zone_error, calendar, calendar_problem = "", None, ""
    try:
        chosen = check_timezone(zone) if zone.strip() else None
    except BadInput as exc:
        zone_error = sentence(str(exc))
    else:
        try:
            # From the course files, as `dripcourse courses calendar` reads them.
            calendar = course_calendar(
                context.settings.courses_dir, slug, context.clock.now(), chosen
            )
        except DripcourseError as exc:
            calendar_problem = sentence(str(exc))
    return render(
        request,
        operator,
        "admin_course.html",
        status_code=404 if missing else 400 if zone_error else 200,
        title=course.title,
        section="courses",
        summary=summary,
        course=course,
        rhythm=_rhythm_words(course),
        report=report,
        chart=lesson_bars(report),
        tracks_clicks=any(row.clicked is not None for row in report),
        keys=keys,
        missing=missing,
        zone=zone,
        zone_error=zone_error,
        calendar=calendar,
        calendar_zone=_zone_of(calendar),
        calendar_problem=calendar_problem,
        cohort_note=cohort_note,
        zones=ZONES,
    )


def _lesson_page(
    request: Request,
    context: Context,
    operator: Operator,
    slug: str,
    key: str,
    status: int = 200,
    sent: lessons.SentTestCopy | None = None,
    failure: str = "",
) -> HTMLResponse:
    """The lesson as a sample reader gets it; after a test send, what went (`sent`) or why it
    did not (`failure`). An unknown lesson is said on the course's page (404)."""
    builder = MessageBuilder(
        context.signer, context.settings.base_url, media_url=context.settings.media_url
    )
    try:
        with context.database.read() as session:
            found, one, rendered = lessons.preview(session, builder, slug, key)
            number = lessons.number_of(found, one)
            count = len(found.current_lessons)
            neighbours = [(n, lesson.key) for n, lesson in enumerate(found.current_lessons, 1)]
            title, course_slug = found.title, found.slug
    except NotFound as exc:
        return _course_page(request, context, operator, slug, "", missing=sentence(str(exc)))
    previous = neighbours[number - 2] if number and number > 1 else None
    following = neighbours[number] if number and number < count else None
    return render(
        request,
        operator,
        "admin_lesson.html",
        status_code=status,
        title=rendered.subject,
        section="courses",
        course_title=title,
        slug=course_slug,
        key=one.key,
        number=number,
        count=count,
        previous=previous,
        following=following,
        rendered=rendered,
        may_test=may(Role(operator.role), Permission.CHANGE_LESSONS),
        sent=sent,
        failure=failure,
    )


def _rhythm_words(course: Course) -> str:
    """`a lesson every 7 days at 08:00, sent Mon, Tue, Wed, Thu, Fri` (in the course's zone)."""
    rhythm = course.settings.rhythm
    every = "day" if rhythm.cadence_days == 1 else f"{rhythm.cadence_days} days"
    days = (
        "every day"
        if len(rhythm.send_days) == 7
        else ", ".join(DAY_ABBREVIATIONS[day] for day in sorted(rhythm.send_days))
    )
    return f"a lesson every {every} at {rhythm.send_time:%H:%M}, sent {days}"


def _zone_of(calendar: Calendar | None) -> ZoneInfo | None:
    return ZoneInfo(calendar.timezone) if calendar is not None else None
