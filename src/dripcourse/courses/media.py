"""The images a course folder uses, found, checked and processed: what `courses check` says of them
and what `courses sync` stores.

A course uses an image in three places: `[brand] logo` in course.toml, a Markdown image in a lesson
body (`![Dead bug, start position](images/dead-bug.png)`; completion.md counts as a lesson), and
the `thumbnail` of a `[[related]]` article (in course.toml or a lesson's front matter). Every one
must be a file inside the course folder: a path relative to it, without `..`, that does not lead
outside it through a symlink, and not an address (images are ours; an email must not fetch from
elsewhere). Each is processed by `images.py`; a problem is said as `file:line: message` at the
line that names the image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from dripcourse.courses.files import CourseSource, LessonSource, Problem
from dripcourse.courses.images import MAX_SOURCE_BYTES, ImageRefused, Processed, process
from dripcourse.domain.media import Picture, Use, display_size
from dripcourse.mail.plaintext import markdown_images


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One processed image to store: `media_files` without its course and time."""

    source: str
    processed: Processed


@dataclass
class CourseMedia:
    problems: list[Problem] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    files: dict[str, MediaFile] = field(default_factory=dict)
    """By served name: one file for each distinct processed image."""


@dataclass(frozen=True, slots=True)
class _Reference:
    use: Use
    source: str
    file: Path
    line: int
    alt: str | None = None
    """A Markdown image's alt text; None where there is none to write (logo, thumbnail)."""


def collect_media(source: CourseSource) -> CourseMedia:
    """Every image `source` uses, checked and processed; its problems are collected, not raised.
    The settings' `max_image_kb` bounds each processed file."""
    media = CourseMedia()
    settings = source.settings
    limit_kb = settings.max_image_kb if settings is not None else None
    seen: set[tuple[Use, str]] = set()
    for reference in _references(source):
        if reference.alt is not None and not reference.alt.strip():
            media.problems.append(
                Problem(
                    reference.file,
                    reference.line,
                    f"image {reference.source} has no alt text: write what it shows, "
                    "![like this](images/dead-bug.png), for readers with images off",
                )
            )
        if (reference.use, reference.source) in seen:
            continue
        seen.add((reference.use, reference.source))
        try:
            data = read_image_file(source.path, reference.source)
            processed = process(data, reference.source, reference.use)
        except ImageRefused as exc:
            media.problems.append(
                Problem(reference.file, reference.line, f"image {reference.source}: {exc}")
            )
            continue
        if limit_kb is not None and len(processed.data) > limit_kb * 1024:
            media.problems.append(
                Problem(
                    reference.file,
                    reference.line,
                    f"image {reference.source} is {len(processed.data) / 1024:,.0f} KB after "
                    f"processing; the limit is {limit_kb} KB ([images] max_kb in course.toml): "
                    "crop it, or save a photo as JPEG",
                )
            )
            continue
        width, height = display_size(processed.width, processed.height, reference.use)
        media.pictures.append(
            Picture(reference.use, reference.source, processed.name, width, height)
        )
        media.files.setdefault(processed.name, MediaFile(reference.source, processed))
    return media


def read_image_file(folder: Path, written: str) -> bytes:
    """The bytes of the image `written` names in the course folder `folder`; `ImageRefused` for a
    path that is not a file inside it."""
    parts = urlsplit(written)
    if parts.scheme or parts.netloc or written.startswith("//"):
        raise ImageRefused(
            "images come from the course folder, not from addresses: save the file beside the "
            "lessons and write its path (images/name.png)"
        )
    path = PurePosixPath(written)
    if not written.strip() or path.is_absolute() or "\\" in written or "\0" in written:
        raise ImageRefused("write a path relative to the course folder, like images/name.png")
    if ".." in path.parts:
        raise ImageRefused("'..' is not allowed: the image must be inside the course folder")
    root = folder.resolve()
    full = folder.joinpath(*path.parts)
    try:
        real = full.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise ImageRefused("file not found in the course folder") from None
    if not real.is_relative_to(root):
        raise ImageRefused("leads outside the course folder (through a symlink)")
    if not real.is_file():
        raise ImageRefused("not a file")
    if real.stat().st_size > MAX_SOURCE_BYTES:
        # Said before reading: a video saved as .png must not be read into memory.
        raise ImageRefused(f"the file is over {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
    try:
        # O_NOFOLLOW-free on purpose: the resolved path was checked; open that one.
        with open(real, "rb") as opened:
            return opened.read()
    except OSError as exc:
        raise ImageRefused(f"cannot read the file: {os.strerror(exc.errno or 0)}") from None


def _references(source: CourseSource) -> list[_Reference]:
    course_toml = source.path / "course.toml"
    toml_lines = _lines(course_toml)
    found: list[_Reference] = []
    settings = source.settings
    if settings is not None:
        if settings.logo is not None:
            line = _line_of(toml_lines, settings.logo, "logo")
            found.append(_Reference(Use.LOGO, settings.logo, course_toml, line))
        for article in settings.related:
            if article.thumbnail is not None:
                line = _line_of(toml_lines, article.thumbnail, "thumbnail")
                found.append(_Reference(Use.THUMBNAIL, article.thumbnail, course_toml, line))
    # The completion email is written like a lesson, so its images are a lesson's.
    closing = [] if source.completion is None else [source.completion]
    for lesson in [*source.lessons, *closing]:
        found.extend(_lesson_references(lesson))
    return found


def _lesson_references(lesson: LessonSource) -> list[_Reference]:
    found = []
    front = _lines(lesson.file)[: lesson.body_line - 1]
    for article in lesson.data.get("related") or []:
        thumbnail = article.get("thumbnail")
        if isinstance(thumbnail, str):
            line = _line_of(front, thumbnail, "thumbnail")
            found.append(_Reference(Use.THUMBNAIL, thumbnail, lesson.file, line))
    for image in markdown_images(lesson.body):
        found.append(
            _Reference(
                Use.CONTENT, image.src, lesson.file, lesson.body_line + image.line, image.alt
            )
        )
    return found


def _line_of(lines: list[str], value: str, key: str) -> int:
    """The 1-based line where `key = "value"` is written; 1 if it cannot be found."""
    for number, line in enumerate(lines, start=1):
        if key in line and value in line:
            return number
    return 1


def _lines(file: Path) -> list[str]:
    try:
        return file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
