"""What the authors' preview server shows, as plain data: the course folders as they are on disk
now, one lesson rendered for a sample subscriber with its checks beside it, and spam scores.

Nothing here knows HTTP: `web/preview.py` parses the request, calls one function of this module and
fills a template. Course files are trusted input, but an author saves them mid-edit: a lesson that
cannot be read or rendered becomes a list of `file:line: message` problems, never an exception.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path

from dripcourse.courses.catalog import (
    SAMPLE_MEDIA_ROOT,
    SAMPLE_RECIPIENT,
    check_course,
    load_sources,
    view_of_source,
)
from dripcourse.courses.checks import lesson_warnings
from dripcourse.courses.files import CourseSource, LessonSource, Problem
from dripcourse.courses.images import Processed
from dripcourse.courses.media import CourseMedia, collect_media
from dripcourse.devtools.spamcheck import SpamReport, spam_report
from dripcourse.domain.validation import check_timezone, clean_name
from dripcourse.errors import NotFound
from dripcourse.mail.builder import CourseView, MessageBuilder, sample_job, sample_message
from dripcourse.mail.rendering import Recipient, RenderedLesson

GMAIL_CLIP_BYTES = 102 * 1024
"""Gmail shows only this much of an email's HTML and hides the rest behind "[Message clipped]",
the footer with the unsubscribe link included."""
SPAM_CACHE_SIZE = 256


def version_stamp(root: Path) -> str:
    """A short hash of the path, size and modification time of every file under `root`: it changes
    when a file is saved, added, removed or renamed. Stat calls only, so it can be asked every
    second; no file watcher (and no dependency) is needed."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if _editor_scratch(path.relative_to(root)):
            continue
        try:
            stat = path.stat()
        except OSError:  # removed between the listing and the stat: the next stamp sees it
            continue
        if path.is_file():
            digest.update(
                f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:16]


def _editor_scratch(path: Path) -> bool:
    """Files an editor writes while the author types (vim's `.x.md.swp`, emacs' `#x.md#` and
    `.#x.md`, backups `x.md~`): they are not saved work, and must not reload the page."""
    return any(part.startswith((".", "#")) or part.endswith("~") for part in path.parts)


@dataclass
class CourseDraft:
    """One course folder as read at one version stamp; checked and compiled only when asked."""

    source: CourseSource
    media_root: str = SAMPLE_MEDIA_ROOT
    """Where the preview serves the course's images (its own `/media`)."""

    @property
    def slug(self) -> str:
        return self.source.slug

    @property
    def title(self) -> str:
        settings = self.source.settings
        return settings.title if settings is not None and settings.title else self.source.slug

    @property
    def default_zone(self) -> str:
        settings = self.source.settings
        return settings.timezone if settings is not None and settings.timezone else "UTC"

    @cached_property
    def problems(self) -> list[Problem]:
        return check_course(self.source)

    @cached_property
    def lesson_problems(self) -> list[Problem]:
        """The problems of every lesson that could be read, rendered even while another file of
        the course is broken (`check_course` stops at the files' problems)."""
        if not self.source.problems:
            return self.problems
        return check_course(dataclasses.replace(self.source, problems=[]))

    @cached_property
    def view(self) -> CourseView:
        return view_of_source(self.source, self.media_root)

    @cached_property
    def media(self) -> CourseMedia:
        return collect_media(self.source)

    def image(self, name: str) -> Processed:
        """A processed image of this course by its served name, as `courses sync` would store it."""
        found = self.media.files.get(name)
        if found is None:
            raise NotFound(f"course {self.slug!r} has no image {name!r} (now)")
        return found.processed

    def lesson(self, key: str) -> LessonSource | None:
        return next((lesson for lesson in self.source.lessons if lesson.key == key), None)

    def subjects(self, sample: Sample, builder: MessageBuilder, now: datetime) -> dict[str, str]:
        """Every readable lesson's subject as `sample` gets it, by key: what the links to lessons
        say. The template's source would show `{{ subscriber.first_name }}` to the author."""
        return {
            lesson.key: self._subject(lesson, sample, builder, now)
            for lesson in self.source.lessons
        }

    def _subject(
        self, lesson: LessonSource, sample: Sample, builder: MessageBuilder, now: datetime
    ) -> str:
        try:
            job = sample_job(self.view, lesson.key, sample.recipient, now)
            return self.view.renderer.subject(lesson.key, sample.recipient, builder.links(job))
        except Exception:  # a subject (or course.toml) mid-edit; its problem is shown elsewhere
            return lesson.title or lesson.key


@dataclass(frozen=True)
class Snapshot:
    stamp: str
    courses: list[CourseDraft]

    def course(self, slug: str) -> CourseDraft:
        found = next((draft for draft in self.courses if draft.slug == slug), None)
        if found is None:
            known = ", ".join(draft.slug for draft in self.courses) or "none"
            raise NotFound(f"there is no course {slug!r} here (courses: {known})")
        return found


class Workspace:
    """The courses under one folder (or one course folder), re-read whenever a file changes.

    The last snapshot is kept while the stamp stays the same, so a page and the requests it makes
    (the spam score) do not read and check the files again.
    """

    def __init__(
        self, courses_dir: Path, path: Path | None = None, media_root: str = SAMPLE_MEDIA_ROOT
    ) -> None:
        self.courses_dir = courses_dir
        self.path = path
        self.media_root = media_root
        self.root = path or courses_dir
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def stamp(self) -> str:
        return version_stamp(self.root)

    def snapshot(self) -> Snapshot:
        # Stamp first, then read: a file saved in between makes the next stamp differ, so the
        # page that polls it reloads and sees the newer file.
        stamp = self.stamp()
        with self._lock:
            if self._snapshot is None or self._snapshot.stamp != stamp:
                sources = load_sources(self.courses_dir, self.path)
                drafts = [CourseDraft(source, self.media_root) for source in sources]
                self._snapshot = Snapshot(stamp, drafts)
            return self._snapshot

    def where(self, problem: Problem) -> str:
        """A problem as `runners/01-feet.md:7: message`: paths from the courses folder on."""
        try:
            shown = problem.file.relative_to(self.root.parent)
        except ValueError:
            shown = problem.file
        return f"{shown}:{problem.line}: {problem.message}"


@dataclass(frozen=True)
class Sample:
    """The imaginary subscriber a lesson is rendered for."""

    name: str
    timezone: str

    @property
    def recipient(self) -> Recipient:
        return Recipient(email=SAMPLE_RECIPIENT.email, name=self.name, timezone=self.timezone)


def sample_of(name: str | None, timezone: str | None, default_zone: str) -> Sample:
    """The sample subscriber the author asked for; `BadInput` explains a bad name or zone."""
    return Sample(
        name=clean_name(SAMPLE_RECIPIENT.name if name is None else name),
        timezone=check_timezone(timezone) if timezone else default_zone,
    )


@dataclass(frozen=True)
class Email:
    """The message exactly as a subscriber would get it, and its parts as a mail client shows them."""

    message: bytes
    sender: str
    to: str
    subject: str
    html: str
    text: str

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def clipped_by_gmail(self) -> bool:
        return self.html_bytes > GMAIL_CLIP_BYTES

    @classmethod
    def parse(cls, message: bytes) -> Email:
        parsed = email.message_from_bytes(message, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return cls(
            message=message,
            sender=str(parsed["From"]),
            to=str(parsed["To"]),
            subject=str(parsed["Subject"]),
            html=_part(parsed, "html"),
            text=_part(parsed, "plain"),
        )


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return "" if part is None else str(part.get_content())


@dataclass(frozen=True)
class LessonPreview:
    draft: CourseDraft
    key: str
    lesson: LessonSource | None
    """None when the lesson's file cannot be read right now (its key may be in the broken part)."""
    sample: Sample
    email: Email | None = None
    problems: list[Problem] = field(default_factory=list)
    """What stops this lesson from rendering; shown instead of the email."""
    elsewhere: list[Problem] = field(default_factory=list)
    """Problems of the course's other lessons, which do not stop this one."""
    warnings: list[Problem] = field(default_factory=list)
    subjects: dict[str, str] = field(default_factory=dict)
    """The course's lessons' subjects as the sample subscriber gets them, by key."""

    @property
    def lessons(self) -> list[LessonSource]:
        return self.draft.source.lessons

    @property
    def previous(self) -> LessonSource | None:
        index = self._index()
        return self.lessons[index - 1] if index is not None and index > 0 else None

    @property
    def next(self) -> LessonSource | None:
        index = self._index()
        return (
            self.lessons[index + 1] if index is not None and index + 1 < len(self.lessons) else None
        )

    @property
    def number(self) -> int | None:
        index = self._index()
        return None if index is None else index + 1

    def _index(self) -> int | None:
        keys = [lesson.key for lesson in self.lessons]
        return keys.index(self.key) if self.key in keys else None


def preview_lesson(
    draft: CourseDraft, key: str, sample: Sample, builder: MessageBuilder, now: datetime
) -> LessonPreview:
    """Lesson `key` as `sample` would get it, with its checks; or the problems that prevent that."""
    preview = _render_lesson(draft, key, sample, builder, now)
    return dataclasses.replace(preview, subjects=draft.subjects(sample, builder, now))


def _render_lesson(
    draft: CourseDraft, key: str, sample: Sample, builder: MessageBuilder, now: datetime
) -> LessonPreview:
    lesson = draft.lesson(key)
    if lesson is None:
        if not draft.source.problems:
            known = ", ".join(lesson.key for lesson in draft.source.lessons)
            raise NotFound(f"course {draft.slug!r} has no lesson {key!r} (its lessons: {known})")
        # A lesson whose front matter is broken is not in the course until it is fixed: the
        # author, who was looking at it a second ago, sees why instead of "not found".
        return LessonPreview(draft, key, None, sample, problems=list(draft.source.problems))
    lesson_files = {other.file for other in draft.source.lessons} | {
        problem.file for problem in draft.source.problems if problem.file.suffix == ".md"
    }
    blocking = [p for p in draft.problems if p.file == lesson.file or p.file not in lesson_files]
    elsewhere = [p for p in draft.problems if p not in blocking]
    if not blocking and draft.source.problems:
        # Only other lessons are broken: this one's own templates must still be checked.
        blocking = [p for p in draft.lesson_problems if p.file == lesson.file]
    if blocking:
        return LessonPreview(draft, key, lesson, sample, problems=blocking, elsewhere=elsewhere)
    try:
        message = sample_message(builder, draft.view, key, sample.recipient, now)
    except Exception as exc:  # the author's own templates run here, for a name `check` never tried
        problem = Problem(lesson.file, 1, f"cannot render for {sample.name!r}: {_describe(exc)}")
        return LessonPreview(draft, key, lesson, sample, problems=[problem], elsewhere=elsewhere)
    parsed = Email.parse(message.data)
    rendered = RenderedLesson(subject=parsed.subject, html=parsed.html, text=parsed.text)
    return LessonPreview(
        draft,
        key,
        lesson,
        sample,
        email=parsed,
        elsewhere=elsewhere,
        # The unsubscribe and view-online links follow the operator's base URL, not the author's
        # files: nothing to warn the author about.
        warnings=lesson_warnings(
            draft.source,
            lesson,
            rendered,
            own_links=builder.links(sample_job(draft.view, key, sample.recipient, now)),
            own_media=draft.view.renderer.media_url,
        ),
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class SpamScores:
    """SpamAssassin's reports, kept by message content: scoring takes about a second, and a page
    reloads after every save, mostly of other files than the lesson shown."""

    def __init__(self, score: Callable[[bytes], SpamReport | None] = spam_report) -> None:
        self._score = score
        self._lock = threading.Lock()
        self._reports: OrderedDict[str, SpamReport | None] = OrderedDict()

    def report(self, message: bytes) -> SpamReport | None:
        """The report on `message`; None when SpamAssassin is not installed. Failures raise
        `spamcheck.SpamCheckError` or `subprocess.TimeoutExpired` and are not kept."""
        key = content_key(message)
        with self._lock:
            if key in self._reports:
                self._reports.move_to_end(key)
                return self._reports[key]
        # Scored outside the lock: one slow check must not hold up the others.
        report = self._score(message)
        with self._lock:
            self._reports[key] = report
            while len(self._reports) > SPAM_CACHE_SIZE:
                self._reports.popitem(last=False)
        return report


def content_key(message: bytes) -> str:
    """A hash of what a message says: every header but the Date and the MIME boundary (which
    change with each build, see `mime.compose`), and the decoded parts."""
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    digest = hashlib.sha256()
    for part in parsed.walk():
        varying = {"date", "content-type"} if part.is_multipart() else {"date"}
        for name, value in part.items():
            if name.lower() not in varying:
                digest.update(f"{name}: {value}\n".encode())
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            digest.update(payload if isinstance(payload, bytes) else b"")
    return digest.hexdigest()
