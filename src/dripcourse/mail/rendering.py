"""Lesson templates: Markdown + Jinja2 + the course layout -> subject, HTML (CSS inlined) and text.

A `CourseRenderer` compiles each lesson once: the Markdown body is converted to HTML and to plain text
with its Jinja tags protected, then placed in the course layout (`{% block body %}`). Per recipient only
the Jinja render and the CSS inlining run. Values are autoescaped in HTML, so a subscriber's name can
never become markup; undefined names are errors (`StrictUndefined`), caught by `courses check`.
Every template compiles in the sandbox of `sandbox.py`: course text cannot reach Python's internals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import css_inline
import jinja2
import jinja2.bccache

from dripcourse.domain.completion import COMPLETION_KEY
from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.fields import complete
from dripcourse.domain.media import Use, find
from dripcourse.mail.plaintext import ImagePlacer, Placed, markdown_to_html, markdown_to_text
from dripcourse.mail.sandbox import course_environment, named_sources
from dripcourse.mail.stencil import (
    Pieces,
    Placeholders,
    Stencil,
    html_contexts,
    only_printed,
    values_of,
)

_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"DCJ(\d{4})Z")
_LONE_STATEMENT_LINE = re.compile(r"^[ \t]*(\{%.*?%\})[ \t]*$", re.MULTILINE)
_LONE_STATEMENT_HTML = re.compile(r"<p>(DCJ\d{4}Z)</p>\n?")
_LONE_STATEMENT_TEXT = re.compile(r"^(DCJ\d{4}Z)\n(?:\n|\Z)", re.MULTILINE)
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class LessonContent:
    """One lesson as the renderer needs it, whether read from files or from the database."""

    key: str
    number: int
    subject: str
    title: str
    data: Mapping[str, Any]
    body: str
    source_file: str = "lesson.md"

    @classmethod
    def of(cls, lesson: LessonText, number: int) -> LessonContent:
        """Lesson number `number` of a course, read from its file or from the database."""
        return cls(
            key=lesson.key,
            number=number,
            subject=lesson.subject,
            title=lesson.title,
            data=lesson.data,
            body=lesson.body,
            source_file=lesson.source_file,
        )


class LessonText(Protocol):
    """What a lesson read from its file (`courses.files.LessonSource`) and a synced one
    (`store.models.Lesson`) both have."""

    @property
    def key(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def body(self) -> str: ...
    @property
    def source_file(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    name: str = ""
    timezone: str = "UTC"
    fields: Mapping[str, str] | FieldValues = field(default_factory=dict)
    """The custom field values the person gave (`enrollments.fields`); the renderer fills in
    each declared field's default and hands templates a `FieldValues`."""

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else "there"


class FieldValues:
    """`subscriber.fields` in a template: `subscriber.fields.level` or `subscriber.fields["club"]`.

    Not a dict: a field named `items` or `keys` must be the field, not a dict method."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldValues) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"FieldValues({self._values!r})"


# Read-only like a mapping (an author's mistake lists the known fields; `{% for %}` walks them),
# without a mapping's methods, which would hide fields of the same names.
Mapping.register(FieldValues)


@dataclass(frozen=True, slots=True)
class Links:
    unsubscribe: str
    view_online: str
    early: str = ""
    """"Get the next lesson now" (`[schedule] allow_early`); empty where there is none to get."""


@dataclass(frozen=True, slots=True)
class RenderedLesson:
    subject: str
    html: str
    text: str


@dataclass
class CourseRenderer:
    """The compiled templates of one course's lessons."""

    settings: CourseSettings
    lessons: Sequence[LessonContent]
    layout_html: str | None = None
    layout_text: str | None = None
    total: int | None = None
    """Lessons in the course now; defaults to all given (retired ones are given too)."""
    _by_key: dict[str, LessonContent] = field(init=False)
    _course: dict[str, Any] = field(init=False)
    """`course` as templates see it: the settings' JSON shape (see `template_course`)."""
    _html_env: jinja2.Environment = field(init=False)
    _text_env: jinja2.Environment = field(init=False)
    _stencils: dict[str, Stencil | None] = field(init=False, default_factory=dict)
    media_url: str = ""
    """Where this course's images are served, `<media root>/<slug>` (`Settings.media_root`);
    empty: images are left as written (a renderer without a place to serve them from)."""

    def __post_init__(self) -> None:
        self._by_key = {lesson.key: lesson for lesson in self.lessons}
        self._course = template_course(self.settings)
        self._course["logo"] = self._picture(Use.LOGO, self.settings.logo, self.settings.brand)
        self._course["related"] = self._articles(self._course["related"])
        html_sources: dict[str, str] = {}
        text_sources: dict[str, str] = {}
        if self.layout_html is not None:
            html_sources["layout.html"] = self.layout_html
        if self.layout_text is not None:
            text_sources["layout.txt"] = self.layout_text
        for lesson in self.lessons:
            html_body, text_body = compile_body(lesson.body, self._place)
            html_sources[f"{lesson.key}.html"] = _child_of("layout.html", html_body)
            text_sources[f"{lesson.key}.txt"] = _child_of("layout.txt", text_body)
            text_sources[f"{lesson.key}.subject"] = lesson.subject
        self._html_env = _environment(html_sources, autoescape=True)
        self._text_env = _environment(text_sources, autoescape=False)

    def lesson(self, key: str) -> LessonContent:
        return self._by_key[key]

    def _place(self, source: str) -> Placed | None:
        picture = find(self.settings.media, Use.CONTENT, source) if self.media_url else None
        if picture is None:
            return None
        return Placed(f"{self.media_url}/{picture.name}", picture.width, picture.height)

    def _picture(self, use: Use, source: str | None, alt: str) -> dict[str, Any] | None:
        """An image as layouts see it (`course.logo`, `article.thumbnail`), or None."""
        picture = find(self.settings.media, use, source) if self.media_url else None
        if picture is None:
            return None
        url = f"{self.media_url}/{picture.name}"
        return {"url": url, "width": picture.width, "height": picture.height, "alt": alt}

    def _articles(self, related: Any) -> list[dict[str, Any]]:
        """Related articles with `thumbnail` as an image (or None), whatever version stored them."""
        return [
            {**article, "thumbnail": self._picture(Use.THUMBNAIL, article.get("thumbnail"), "")}
            for article in related or []
        ]

    def _field_names(self) -> list[str]:
        return [spec.name for spec in self.settings.fields]

    def _completed(self, recipient: Recipient | Placeholders) -> Recipient | Placeholders:
        """The recipient as templates see it: every declared field, its default where not given."""
        if not isinstance(recipient, Recipient) or isinstance(recipient.fields, FieldValues):
            return recipient
        values = complete(recipient.fields, self.settings.fields)
        return replace(recipient, fields=FieldValues(values))

    def context(
        self, key: str, recipient: Recipient | Placeholders, links: Links | Placeholders
    ) -> dict[str, Any]:
        recipient = self._completed(recipient)
        lesson = self._by_key[key]
        data = dict(lesson.data)
        return {
            "course": self._course,
            "lesson": {
                **data,
                "key": lesson.key,
                "number": lesson.number,
                "total": self.total or len(self.lessons),
                "title": lesson.title,
                "subject": lesson.subject,
                "preheader": data.get("preheader"),
                "topics": data.get("topics", []),
                "exercises": data.get("exercises", []),
                "equipment": data.get("equipment", []),
                "teaser": data.get("teaser"),
                "related": self._articles(data.get("related")) or self._course["related"],
                "is_completion": lesson.key == COMPLETION_KEY,
            },
            "subscriber": recipient,
            "links": links,
        }

    def render(self, key: str, recipient: Recipient, links: Links) -> RenderedLesson:
        """The lesson for one recipient: from its stencil when it has one, else rendered in full."""
        if key not in self._stencils:
            self._stencils[key] = self._stencil(key)
        stencil = self._stencils[key]
        if stencil is None:
            return self.render_in_full(key, recipient, links)
        values = values_of(self._completed(recipient), links, self._field_names())
        subject, html, text = stencil.fill(values)
        return RenderedLesson(subject=one_line(subject), html=html, text=text)

    def _stencil(self, key: str) -> Stencil | None:
        html, text, fields = f"{key}.html", f"{key}.txt", self._field_names()
        if not (
            only_printed(self._html_env, [html], fields)
            and only_printed(self._text_env, [text], fields)
            and only_printed(self._text_env, [f"{key}.subject"], fields)
        ):
            return None
        marked = self.render_in_full(key, Placeholders("subscriber", fields), Placeholders("links"))
        html_pieces = Pieces.cut(marked.html)
        return Stencil(
            Pieces.cut(marked.subject),
            html_pieces,
            Pieces.cut(marked.text),
            html_contexts(html_pieces),
        )

    def subject(self, key: str, recipient: Recipient, links: Links) -> str:
        """The subject alone, as `render` gives it: the preview names other lessons by it."""
        return one_line(self._subject(key, self.context(key, recipient, links)))

    def render_in_full(
        self, key: str, recipient: Recipient | Placeholders, links: Links | Placeholders
    ) -> RenderedLesson:
        """Jinja2 and CSS inlining for this recipient: the reference the stencils must match."""
        context = self.context(key, recipient, links)
        subject = self._subject(key, context)
        context["lesson"]["subject"] = subject
        html = self._html_env.get_template(f"{key}.html").render(context)
        text = self._text_env.get_template(f"{key}.txt").render(context).rstrip() + "\n"
        return RenderedLesson(subject=one_line(subject), html=_INLINER.inline(html), text=text)

    def _subject(self, key: str, context: Mapping[str, Any]) -> str:
        return self._text_env.get_template(f"{key}.subject").render(context)


def template_course(settings: CourseSettings) -> dict[str, Any]:
    """`course` in a template: the settings as plain data, in the shape docs/course-format.md
    documents (`course.sender.get("bounce_email")`, `course.links.shop`). Plain data, as before:
    the sandbox keeps a template from changing it, and no template reaches the settings' methods."""
    shape = settings.to_json()
    # The completion email is a template of its own, not a value; allow_early is always there,
    # so that a layout may test it without `.get`.
    shape.pop("completion", None)
    shape["schedule"]["allow_early"] = shape.pop("allow_early", False)
    shape.pop("next", None)
    shape["next"] = {"course": settings.next_course}
    shape.pop(
        "media", None
    )  # the renderer's business: `course.logo` and thumbnails are what to print
    return shape


def render_confirmation(
    settings: CourseSettings, recipient: Recipient, confirm_url: str
) -> RenderedLesson:
    """The double opt-in email: one button that starts the course."""
    context = {
        "course": template_course(settings),
        "subscriber": recipient,
        "confirm_url": confirm_url,
    }
    subject = f"Please confirm your subscription to {settings.title}"
    html = _PACKAGE_HTML.get_template("confirmation.html").render(context)
    text = _PACKAGE_TEXT.get_template("confirmation.txt").render(context)
    return RenderedLesson(subject=one_line(subject), html=_INLINER.inline(html), text=text)


def compile_body(markdown: str, images: ImagePlacer | None = None) -> tuple[str, str]:
    """The body as an HTML and a text Jinja template, its Jinja tags kept out of Markdown's way.

    Each tag becomes a placeholder word while Markdown is converted, then is put back. A statement
    alone on its line (`{% if %}`, `{% endif %}`) is made a block of its own, so it never lands in
    the middle of a wrapped paragraph; the empty paragraph or line it would leave is removed, and
    `trim_blocks` eats the newline after it when the template renders.
    """
    tags: list[str] = []

    def protect(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"DCJ{len(tags) - 1:04d}Z"

    def restore(match: re.Match[str]) -> str:
        return tags[int(match.group(1))]

    protected = _JINJA_TAG.sub(protect, _LONE_STATEMENT_LINE.sub(r"\n\1\n", markdown))
    statements = {f"DCJ{i:04d}Z" for i, tag in enumerate(tags) if tag.startswith("{%")}

    def unwrap(match: re.Match[str]) -> str:
        return match.group(1) + "\n" if match.group(1) in statements else match.group(0)

    html = _LONE_STATEMENT_HTML.sub(unwrap, markdown_to_html(protected, images))
    text = _LONE_STATEMENT_TEXT.sub(unwrap, markdown_to_text(protected))
    return _PLACEHOLDER.sub(restore, html), _PLACEHOLDER.sub(restore, text)


def one_line(text: str) -> str:
    """Header values are single lines by construction: any run of whitespace becomes one space."""
    return " ".join(text.split())


def _child_of(layout: str, body: str) -> str:
    return f'{{% extends "{layout}" %}}{{% block body %}}{body}{{% endblock %}}'


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates kept in memory across environments of the same options (Jinja2 checks
    each one's source checksum before using it): every builder and every course check makes new
    environments for the same layouts and lessons, and compiling them was most of their cost."""

    KEPT = 1024

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if len(self._compiled) >= self.KEPT:
            self._compiled.clear()
        self._compiled[bucket.key] = bucket.bytecode_to_string()


# One per value of the one option that differs (autoescape changes the compiled code).
_COMPILED = {True: _CompiledTemplates(), False: _CompiledTemplates()}


def _environment(sources: dict[str, str], *, autoescape: bool) -> jinja2.Environment:
    # Sandboxed even for the package's own templates: the course's lessons and layouts compile in
    # the same environment as the built-in layout they extend.
    return course_environment(
        jinja2.ChoiceLoader(
            [named_sources(sources), jinja2.PackageLoader("dripcourse", "templates")]
        ),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_COMPILED[autoescape],
    )


_PACKAGE_HTML = _environment({}, autoescape=True)
_PACKAGE_TEXT = _environment({}, autoescape=False)
