"""Warnings about a course that renders but may read badly in an inbox (`courses check`).

Problems (`courses.check_course`) stop a course; warnings do not, unless `courses check --strict`.
Each warning is a `Problem` whose message starts with "warning: ", pointing at the line it comes
from, so it reads like a compiler's warning. What is checked, in the lesson as rendered for the
sample subscriber:

- the subject is over 70 characters (many inboxes cut it there) or the lesson has no preheader;
- every `href`/`src` of the HTML part: a relative link (no scheme or host: nothing to resolve it
  against in an inbox) or one that is not https; `mailto:`/`tel:`/`sms:` links and the product's own
  unsubscribe and view-online links are left alone;
- images: no alt text (an empty alt only passes on an image marked `role="presentation"`, since
  Markdown's `![](pic.png)` gives an empty alt by forgetting one), and an image written in a layout
  without a `width` attribute (Markdown cannot give one, so lesson images are not held to it);
- an HTML part, as sent, near the size at which Gmail clips a message;
- Markdown files that open with front matter like a lesson, but are not named like one
  (`feet.md` for `01-feet.md`), and so are left out: one warning for all of them.

Nothing is rendered or sent here beyond the lesson in hand; the only files read are the lesson's own
file and course.toml, and only to find the line a link came from (line 1 if they cannot be read).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dripcourse.courses.catalog import (
    SAMPLE_LINKS,
    SAMPLE_MEDIA_ROOT,
    SAMPLE_RECIPIENT,
    rendered_key,
    renderer_for_source,
    unknown_next_course,
)
from dripcourse.courses.files import CourseSource, LessonSource, Problem
from dripcourse.domain.course_settings import CourseSettings
from dripcourse.mail.mime import encode_body
from dripcourse.mail.rendering import Links, RenderedLesson

SUBJECT_LIMIT = 70
"""Characters: Gmail, Outlook and phones show about 60-70 characters of a subject in the list."""
GMAIL_CLIP_BYTES = 102_000
"""Gmail shows "[Message clipped]" over "102KB"; the smaller (decimal) reading, so we warn early."""
CLIP_WARNING_SHARE = 0.8
"""Warn from this share of the clip size: personal values and edits push a lesson over."""
_NOT_LINKS = ("mailto", "tel", "sms")
_DECORATIVE = ("presentation", "none")
# A URL found in a file must end where the URL ends, so "https://a.example" is not found
# inside "https://a.example/blog".
_URL_END = r"(?![^\s\"'<>)\]])"


@dataclass(frozen=True, slots=True)
class _Reference:
    """One `href` or `src` of the HTML part."""

    tag: str
    attribute: str
    url: str
    attrs: dict[str, str]


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[_Reference] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for attribute in ("href", "src"):
            if attribute in values:
                self.found.append(_Reference(tag, attribute, values[attribute], values))


def lesson_warnings(
    source: CourseSource,
    lesson: LessonSource,
    rendered: RenderedLesson,
    own_links: Links = SAMPLE_LINKS,
    own_media: str = SAMPLE_MEDIA_ROOT,
) -> list[Problem]:
    """The warnings of one lesson as rendered for the sample subscriber, in the order found.

    `own_links` are the unsubscribe and view-online links the lesson was rendered with: the
    product's own, never warned about (pass yours when rendering with a real base URL); so are
    images under `own_media`, the course's processed images (the preview serves them over http).
    """
    warnings = [*_subject_warnings(lesson, rendered), *_size_warnings(lesson, rendered)]
    locate = _Locator(source, lesson)
    parser = _References()
    parser.feed(rendered.html)
    parser.close()
    for reference in parser.found:
        if reference.url in (own_links.unsubscribe, own_links.view_online):
            continue
        if own_media and reference.url.startswith(own_media.rstrip("/") + "/"):
            continue
        file, line, in_lesson_body = locate(reference.url)
        if reference.tag == "img" and in_lesson_body:
            # A lesson's images are files of the course folder, checked as problems (alt text
            # included) by courses/media.py; "write the full https:// address" would be wrong.
            continue
        messages = [*_link_messages(reference), *_image_messages(reference, in_lesson_body)]
        warnings.extend(Problem(file, line, f"warning: {message}") for message in messages)
    return warnings


def course_warnings(source: CourseSource) -> list[Problem]:
    """The warnings of every lesson rendered for the sample subscriber, and of course.toml's links.

    A link of course.toml shown in every lesson is one warning, not one per lesson. A course whose
    files have problems gives no warnings but the one about files that look like lessons and are
    not named like one (they may be why): it cannot be rendered, and its problems come first.
    """
    misnamed = _misnamed_warnings(source)
    if source.problems:
        return misnamed
    renderer = renderer_for_source(source)
    warnings: list[Problem] = []
    closing = [] if source.completion is None else [source.completion]
    for lesson in [*source.lessons, *closing]:
        try:
            key = rendered_key(source, lesson)
            rendered = renderer.render(key, SAMPLE_RECIPIENT, SAMPLE_LINKS)
        except Exception:  # a lesson that does not render is a problem, which check_course reports
            continue
        warnings.extend(lesson_warnings(source, lesson, rendered))
    course_toml = source.path / "course.toml"
    following = source.checked_settings.next_course
    if following is not None and not (source.path.parent / following / "course.toml").is_file():
        warnings.append(Problem(course_toml, 1, unknown_next_course(following)))
    lines = _file_lines(course_toml)
    for url in _settings_urls(source.checked_settings):
        message = _url_message("link", url)
        if message:
            found = _line_of(lines, url, 0)
            line = 1 if found is None else found + 1
            warnings.append(Problem(course_toml, line, f"warning: {message}"))
    return sorted(dict.fromkeys(warnings + misnamed), key=lambda p: (str(p.file), p.line))


def _misnamed_warnings(source: CourseSource) -> list[Problem]:
    """One line for all the files left out because their names do not start with a number."""
    if not source.misnamed:
        return []
    names = ", ".join(file.name for file in source.misnamed)
    return [
        Problem(
            source.misnamed[0],
            1,
            f"warning: not read as lessons: {names} (a lesson file's name starts with its "
            "number, like 01-feet.md)",
        )
    ]


def _subject_warnings(lesson: LessonSource, rendered: RenderedLesson) -> Iterator[Problem]:
    if len(rendered.subject) > SUBJECT_LIMIT:
        yield Problem(
            lesson.file,
            lesson.front_matter_lines.get("subject", 1),
            f"warning: subject is {len(rendered.subject)} characters; "
            f"many inboxes cut it at about {SUBJECT_LIMIT}",
        )
    preheader = lesson.data.get("preheader")
    if not (isinstance(preheader, str) and preheader.strip()):
        yield Problem(
            lesson.file,
            lesson.front_matter_lines.get("preheader", 1),
            "warning: no preheader; inboxes show the first words of the email beside the subject "
            '(add preheader = "..." to the front matter)',
        )


def _size_warnings(lesson: LessonSource, rendered: RenderedLesson) -> Iterator[Problem]:
    # Measured as it goes over the wire: quoted-printable, when a line is too long, adds bytes.
    size = len(encode_body(rendered.html)[1])
    if size > GMAIL_CLIP_BYTES * CLIP_WARNING_SHARE:
        yield Problem(
            lesson.file,
            1,
            f"warning: the HTML part is {size:,} bytes, near the clipping limit: Gmail cuts "
            f"an email whose HTML is over {GMAIL_CLIP_BYTES:,} bytes, hiding its end and "
            "the unsubscribe link",
        )


def _link_messages(reference: _Reference) -> Iterator[str]:
    kind = "image" if reference.tag == "img" and reference.attribute == "src" else "link"
    message = _url_message(kind, reference.url)
    if message:
        yield message


def _url_message(kind: str, url: str) -> str | None:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in _NOT_LINKS or (scheme == "https" and parts.netloc):
        return None
    if not scheme or not parts.netloc:
        return (
            f"relative {kind} {url!r}: an email has no address to resolve it against "
            "(write the full https:// address)"
        )
    return f"{kind} {url} is not https"


def _image_messages(reference: _Reference, from_markdown: bool) -> Iterator[str]:
    if reference.tag != "img" or reference.attribute != "src":
        return
    attrs, url = reference.attrs, reference.url
    decorative = attrs.get("role", "").strip().lower() in _DECORATIVE
    if "alt" not in attrs and not decorative:
        yield f"image {url} has no alt text (what readers see when images are off)"
    elif not attrs["alt"].strip() and not decorative:
        yield (
            f"image {url} has an empty alt text; describe the image "
            '(or mark it role="presentation" in a layout if it is only decoration)'
        )
    # Markdown has no way to give an image a width; only HTML an author wrote is held to it.
    if "width" not in attrs and not from_markdown:
        yield f"image {url} has no width attribute; Outlook shows it at its full size"


def _settings_urls(settings: CourseSettings) -> Iterator[str]:
    """The links course.toml gives: the call to action, [links] and [[related]]."""
    if settings.call_to_action is not None and settings.call_to_action.url:
        yield settings.call_to_action.url
    yield from (url for _name, url in settings.links)
    yield from (item.url for item in settings.related if item.url)


class _Locator:
    """Where a URL of the rendered lesson was written: its body, its front matter, course.toml,
    the course's layout.html, else the lesson's first line. Repeats are found in order."""

    def __init__(self, source: CourseSource, lesson: LessonSource) -> None:
        self.lesson = lesson
        self.body = lesson.body.splitlines()
        front_matter = _file_lines(lesson.file)[: lesson.body_line - 1]
        layout = (source.layout_html or "").splitlines()
        self.places: list[tuple[Path, list[str], int]] = [
            (lesson.file, self.body, lesson.body_line),
            (lesson.file, front_matter, 1),
            (source.path / "course.toml", _file_lines(source.path / "course.toml"), 1),
            (source.path / "layout.html", layout, 1),
        ]
        self.seen: dict[tuple[int, str], int] = {}

    def __call__(self, url: str) -> tuple[Path, int, bool]:
        """The file and line of `url`, and whether it is in the lesson's Markdown body."""
        for number, (file, lines, first_line) in enumerate(self.places):
            for candidate in dict.fromkeys((url, unquote(url))):
                start = self.seen.get((number, candidate), 0)
                found = _line_of(lines, candidate, start)
                if found is None and start:
                    found = _line_of(lines, candidate, 0)
                if found is not None:
                    self.seen[(number, candidate)] = found + 1
                    return file, first_line + found, number == 0
        return self.lesson.file, 1, False


def _line_of(lines: list[str], url: str, start: int) -> int | None:
    """The 0-based index of the first line from `start` holding `url` as a whole URL."""
    pattern = re.compile(re.escape(url) + _URL_END)
    return next((i for i in range(start, len(lines)) if pattern.search(lines[i])), None)


def _file_lines(file: Path) -> list[str]:
    try:
        return file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
