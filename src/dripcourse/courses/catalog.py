"""Courses: check a course folder by rendering every lesson, and sync it into the database.

Syncing never loses history: lessons are matched by key, so renaming or renumbering files keeps every
subscriber's ledger; a lesson whose file is gone is retired, not deleted; a lesson added at the end
reopens the enrolments of those who had finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dripcourse.courses.files import (
    SLUG,
    CourseSource,
    LessonSource,
    Problem,
    discover,
    read_course,
)
from dripcourse.courses.media import CourseMedia, collect_media
from dripcourse.domain.audiences import Audiences, next_lesson_for
from dripcourse.domain.cohort import due_after_history
from dripcourse.domain.completion import COMPLETION_FILE, COMPLETION_KEY
from dripcourse.domain.enrolment import Change, apply
from dripcourse.domain.media import Picture, merged
from dripcourse.domain.policy import OPEN_DELIVERY
from dripcourse.domain.schedule import first_slot_at_or_after, next_lesson_due
from dripcourse.errors import BadInput, NotFound
from dripcourse.mail.builder import CourseView, media_url_of
from dripcourse.mail.rendering import CourseRenderer, LessonContent, Links, Recipient
from dripcourse.mail.sandbox import course_environment, named_sources
from dripcourse.mail.templatemistakes import describe, syntax_line, template_line
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    MediaFile,
)
from dripcourse.store.queries import lesson_histories

SAMPLE_RECIPIENT = Recipient(
    email="sample.reader@example.com", name="Sam Sample", timezone="America/Toronto"
)
SAMPLE_LINKS = Links(
    unsubscribe="https://example.com/unsubscribe/sample-token",
    view_online="https://example.com/view/sample-token",
    early="https://example.com/early/sample-token",
)
SAMPLE_MEDIA_ROOT = "https://example.com/media"
"""Where a course read from its files says its images are, unless told (`courses check`)."""


@dataclass
class SyncReport:
    slug: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    reordered: bool = False
    reopened: int = 0
    """Enrolments that had finished and are owed a newly added lesson."""
    warnings: list[str] = field(default_factory=list)
    """Said but not refused: a `[next] course` that is neither synced nor a folder beside it."""
    images_added: int = 0
    """Processed images stored by this sync (a changed image is a new one; none is replaced)."""


def find_course_dirs(courses_dir: Path, path: Path | None = None) -> list[Path]:
    """The course folders to work on: `path` (one course, or a folder of courses) or all."""
    target = path or courses_dir
    if (target / "course.toml").is_file():
        return [target]
    found = discover(target)
    if not found:
        raise NotFound(f"no courses found in {target} (a course is a folder with a course.toml)")
    return found


def check_course(source: CourseSource) -> list[Problem]:
    """All problems of a course: its files and images, then every lesson rendered for a sample
    subscriber."""
    media = collect_media(source)
    problems = [*source.problems, *media.problems]
    if problems:
        return problems
    renderer = renderer_for_source(source, media=media)
    closing = [] if source.completion is None else [source.completion]
    for lesson in [*source.lessons, *closing]:
        lesson_problems = _check_lesson_templates(lesson, renderer)
        problems.extend(lesson_problems)
        if lesson_problems:
            continue
        key = rendered_key(source, lesson)
        try:
            renderer.render(key, SAMPLE_RECIPIENT, SAMPLE_LINKS)
        except Exception as exc:  # a course's own layout runs here: anything may go wrong
            variables = list(renderer.context(key, SAMPLE_RECIPIENT, SAMPLE_LINKS))
            problems.append(_layout_problem(source, exc, variables))
    return problems


def renderer_for_source(
    source: CourseSource, media_root: str = SAMPLE_MEDIA_ROOT, media: CourseMedia | None = None
) -> CourseRenderer:
    """The renderer of a course read from its files, its images processed as a sync would and
    said to be served under `media_root`; BadInput if its course.toml has problems. The
    completion email, if any, is rendered under `COMPLETION_KEY`, numbered as the last lesson."""
    media = collect_media(source) if media is None else media
    settings = replace(source.checked_settings, media=tuple(media.pictures))
    lessons = [LessonContent.of(lesson, n) for n, lesson in enumerate(source.lessons, 1)]
    if settings.completion is not None:
        lessons.append(LessonContent.of(settings.completion, len(source.lessons)))
    return CourseRenderer(
        settings=settings,
        lessons=lessons,
        layout_html=source.layout_html,
        layout_text=source.layout_text,
        total=len(source.lessons),
        media_url=media_url_of(media_root, source.slug),
    )


def rendered_key(source: CourseSource, lesson: LessonSource) -> str:
    """The renderer's name of a lesson of `source`, or of its completion email."""
    return COMPLETION_KEY if lesson is source.completion else lesson.key


def view_of_source(source: CourseSource, media_root: str = SAMPLE_MEDIA_ROOT) -> CourseView:
    """A course read from its files, not synced: previews and checks build messages through it."""
    renderer = renderer_for_source(source, media_root)
    return CourseView(source.slug, renderer.settings, renderer)


def _check_lesson_templates(lesson: LessonSource, renderer: CourseRenderer) -> list[Problem]:
    """Render the subject and the raw body alone, so errors point at the author's own lines."""
    sources = {"subject": lesson.subject, "body": lesson.body}
    first_line = {"subject": lesson.front_matter_lines.get("subject", 1), "body": lesson.body_line}
    env = course_environment(named_sources(sources), autoescape=False)
    context = renderer.context(
        COMPLETION_KEY if lesson.file.name == COMPLETION_FILE else lesson.key,
        SAMPLE_RECIPIENT,
        SAMPLE_LINKS,
    )
    problems = []
    for part in ("subject", "body"):
        try:
            env.get_template(part).render(context)
        except jinja2.TemplateSyntaxError as exc:
            line = first_line[part] + syntax_line(exc) - 1 if part == "body" else first_line[part]
            problems.append(Problem(lesson.file, line, f"template syntax: {exc.message}"))
        except Exception as exc:  # the author's own expressions run here
            line = template_line(exc, part) or 1
            line = first_line[part] + line - 1 if part == "body" else first_line[part]
            message = describe(exc, {part: sources[part]}, context)
            problems.append(Problem(lesson.file, line, f"{part}: {message}"))
    return problems


def _layout_problem(source: CourseSource, exc: BaseException, variables: list[str]) -> Problem:
    for name in ("layout.html", "layout.txt"):
        layout = source.layout_html if name == "layout.html" else source.layout_text
        if isinstance(exc, jinja2.TemplateSyntaxError) and exc.name == name:
            line: int | None = syntax_line(exc)
        else:
            line = template_line(exc, name) or getattr(exc, "lineno", None)
        if layout is not None and line:
            message = describe(exc, {name: layout}, variables)
            return Problem(source.path / name, line, f"layout: {message}")
    return Problem(source.path / "course.toml", 1, f"layout: {describe(exc, {}, variables)}")


def sync_course(session: Session, source: CourseSource, now: datetime) -> SyncReport:
    """Load a course into the database; one with problems is refused (BadInput) before anything
    of it is written."""
    problems = check_course(source)
    if problems:
        raise BadInput(
            f"course {source.slug!r} not synced: {len(problems)} problem(s); first: {problems[0]}"
        )
    report = SyncReport(slug=source.slug)
    media = collect_media(source)  # processed by check_course a moment ago: kept, not redone
    settings = source.checked_settings
    course = session.scalar(select(Course).where(Course.slug == source.slug))
    if course is None:
        course = Course(slug=source.slug, title="", settings=settings, synced_at=now)
        session.add(course)
        older: tuple[Picture, ...] = ()
    else:
        older = course.settings.media
    settings = replace(settings, media=merged(older, tuple(media.pictures)))
    course.title = settings.title
    course.settings = settings
    course.layout_html = source.layout_html
    course.layout_text = source.layout_text
    course.synced_at = now
    session.flush()
    report.images_added = _store_media(session, course, media, now)

    existing = {
        lesson.key: lesson
        for lesson in session.scalars(select(Lesson).where(Lesson.course_id == course.id))
    }
    old_order = [
        lesson.key
        for lesson in sorted(existing.values(), key=lambda x: x.position)
        if lesson.is_current
    ]
    for lesson_source in source.lessons:
        lesson = existing.get(lesson_source.key)
        if lesson is None:
            lesson = Lesson(course_id=course.id, key=lesson_source.key, retired_at=None)
            session.add(lesson)
            report.added.append(lesson_source.key)
        elif lesson.content_hash != lesson_source.content_hash or not lesson.is_current:
            report.updated.append(lesson_source.key)
        lesson.position = lesson_source.position
        lesson.source_file = lesson_source.file.name
        lesson.subject = lesson_source.subject
        lesson.title = lesson_source.title
        lesson.data = lesson_source.data
        lesson.body = lesson_source.body
        lesson.body_line = lesson_source.body_line
        lesson.content_hash = lesson_source.content_hash
        lesson.retired_at = None
    present = {lesson.key for lesson in source.lessons}
    for key, lesson in existing.items():
        if key not in present and lesson.is_current:
            lesson.retired_at = now
            report.retired.append(key)
    new_order = [lesson.key for lesson in source.lessons]
    report.reordered = [k for k in new_order if k in old_order] != [
        k for k in old_order if k in present
    ]
    session.flush()
    _cancel_retired(session, course, now)
    if settings.completion is None:
        _cancel_completions(session, course)
    if report.added or report.retired or report.reordered:
        report.reopened = _reopen_finished(session, course, new_order, now)
    following = settings.next_course
    if following is not None and not _course_known(session, source.path.parent, following):
        report.warnings.append(f"{source.path / 'course.toml'}:1: {unknown_next_course(following)}")
    return report


def _course_known(session: Session, courses_dir: Path, slug: str) -> bool:
    synced = session.scalar(select(Course.id).where(Course.slug == slug))
    return synced is not None or (courses_dir / slug / "course.toml").is_file()


def unknown_next_course(slug: str) -> str:
    """The warning about a `[next] course` nobody can be enrolled in (yet): at the finish, such
    a course is skipped and logged (`sending/sequels.py`)."""
    return (
        f"warning: next.course {slug!r} is not a course "
        "(no folder of that name beside this one, and none synced): "
        "nobody will be enrolled in it when they finish"
    )


def _store_media(session: Session, course: Course, media: CourseMedia, now: datetime) -> int:
    """Adds the processed images the course does not have yet; rows are never replaced nor
    deleted, since emails already sent point at them by name."""
    stored = set(session.scalars(select(MediaFile.name).where(MediaFile.course_id == course.id)))
    added = 0
    for name, file in media.files.items():
        if name in stored:
            continue
        image = file.processed
        session.add(
            MediaFile(
                course_id=course.id,
                name=name,
                source=file.source[:255],
                content_type=image.content_type,
                width=image.width,
                height=image.height,
                data=image.data,
                created_at=now,
            )
        )
        added += 1
    session.flush()
    return added


def _cancel_completions(session: Session, course: Course) -> None:
    """Completion emails still waiting when completion.md is removed are cancelled: there is
    nothing left to render them from (unlike a retired lesson, it is not kept)."""
    session.execute(
        update(Delivery)
        .where(
            Delivery.kind == DeliveryKind.COMPLETION,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.enrollment_id.in_(
                select(Enrollment.id).where(Enrollment.course_id == course.id)
            ),
        )
        .values(
            status=DeliveryStatus.CANCELLED,
            last_error="completion email removed: completion.md is no longer in the course",
        )
        .execution_options(synchronize_session=False)
    )


def _cancel_retired(session: Session, course: Course, now: datetime) -> None:
    """Owed copies of a retired lesson are cancelled; the person's next lesson takes its slot."""
    pending = session.scalars(
        select(Delivery)
        .join(Lesson)
        .where(
            Lesson.course_id == course.id,
            ~Lesson.is_current,
            Delivery.kind == DeliveryKind.LESSON,
            Delivery.status.in_(OPEN_DELIVERY),
        )
    ).all()
    for delivery in pending:
        delivery.status = DeliveryStatus.CANCELLED
        delivery.last_error = "lesson retired: its file was removed from the course"
        enrollment = delivery.enrollment
        if enrollment.status == EnrollmentStatus.ACTIVE:
            enrollment.next_due_at = max(delivery.due_at, now)


def _reopen_finished(session: Session, course: Course, order: list[str], now: datetime) -> int:
    """Those who finished are owed a lesson that now stands after their last one."""
    finished = session.scalars(
        select(Enrollment).where(
            Enrollment.course_id == course.id, Enrollment.status == EnrollmentStatus.COMPLETED
        )
    ).all()
    rhythm = course.settings.rhythm
    histories = lesson_histories(session, [enrollment.id for enrollment in finished])
    # A lesson for an audience they are outside reopens nothing (domain/audiences.py).
    audiences = Audiences.of(
        (key, data)
        for key, data in session.execute(
            select(Lesson.key, Lesson.data).where(Lesson.course_id == course.id, Lesson.is_current)
        )
    )
    declared = course.settings.fields
    reopened = 0
    for enrollment in finished:
        history = histories[enrollment.id]
        is_for = audiences.is_for(enrollment.fields, declared)
        if next_lesson_for(order, [had.key for had in history], is_for)[0] is None:
            continue
        zone = ZoneInfo(enrollment.subscriber.timezone)
        last_sent = history[-1].at if history else now
        due = max(
            next_lesson_due(last_sent, zone, rhythm), first_slot_at_or_after(now, zone, rhythm)
        )
        if course.settings.cohort is not None:  # the new lesson on its cohort date, or after
            keys = [had.key for had in history]
            cohort = course.settings.cohort
            due = due_after_history(order, keys, last_sent, cohort, zone, rhythm, not_before=now)
        reopened += apply(enrollment, Change.REOPEN, now, next_due_at=due)
    return reopened


def get_course(session: Session, slug: str) -> Course:
    # A name that cannot be a slug cannot be a course (and may not even be encodable text).
    course = (
        session.scalar(select(Course).where(Course.slug == slug)) if SLUG.fullmatch(slug) else None
    )
    if course is None:
        known = ", ".join(session.scalars(select(Course.slug).order_by(Course.slug))) or "none"
        shown = slug.encode("utf-8", "backslashreplace").decode()
        raise NotFound(
            f"unknown course {shown!r} (synced courses: {known}; run `dripcourse courses sync`)"
        )
    return course


def course_slugs(session: Session) -> list[str]:
    """The synced courses' slugs, in order: what a form offers to choose from (one small query,
    unlike the overview's counts)."""
    return list(session.scalars(select(Course.slug).order_by(Course.slug)))


def load_sources(courses_dir: Path, path: Path | None = None) -> list[CourseSource]:
    return [read_course(folder) for folder in find_course_dirs(courses_dir, path)]
