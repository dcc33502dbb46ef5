"""HTML that mail clients render: the HTML part of every shipped lesson, read from the sent message.

Mail clients are not browsers: many drop <head> styles, most never run scripts or fetch
stylesheets, Outlook lays out tables only, and Gmail clips a message whose HTML passes 102 KB. So
the part must be a complete document whose looks live in style attributes, in a table layout at
most 600 px wide, with a hidden preheader for the inbox preview.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import html5lib
from shipped import BASE_URL, SECRET_KEY, LessonMail

from dripcourse.mail.links import track_links
from dripcourse.mail.tokens import Signer

GMAIL_CLIPS_AT = 102 * 1024
COLUMN_MAX = 600


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parents: tuple[Element, ...]
    text: list[str] = field(default_factory=list)

    def style(self) -> dict[str, str]:
        """The declarations of the style attribute; a later one wins, as in CSS."""
        declarations = (d.split(":", 1) for d in self.attrs.get("style", "").split(";") if ":" in d)
        return {name.strip().lower(): value.strip().lower() for name, value in declarations}

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Document(HTMLParser):
    """The elements of an HTML document, each with its ancestors and its own text."""

    VOID = frozenset({"meta", "link", "br", "img", "hr", "input", "col", "source", "wbr", "area"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.doctype = ""
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, tuple(self.open))
        self.elements.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, tuple(self.open)))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].text.append(data)

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def one(self, tag: str) -> Element:
        found = self.all(tag)
        assert len(found) == 1, f"expected one <{tag}>, found {len(found)}"
        return found[0]

    def text_of(self, element: Element) -> str:
        """All the text inside `element`, its descendants' included."""
        inside = [element, *(e for e in self.elements if element in e.parents)]
        return "".join(chunk for e in inside for chunk in e.text)


def test_it_is_a_complete_document(lesson_mail: LessonMail) -> None:
    html = lesson_mail.html
    document = Document(html)

    assert html.lstrip().lower().startswith("<!doctype html>")
    assert document.doctype.lower() == "doctype html"
    assert document.one("html").attrs.get("lang") == "en"
    assert document.text_of(document.one("title")).strip() == lesson_mail.message["Subject"]
    charsets = [
        meta.attrs["charset"].lower() for meta in document.all("meta") if "charset" in meta.attrs
    ]
    assert charsets == ["utf-8"]
    assert lesson_mail.part("html").get_content_charset() == "utf-8"
    # Said in the first 1024 bytes, where a browser (and a "view online" copy) looks for it.
    assert b'<meta charset="utf-8">' in lesson_mail.html_bytes[:1024]


def test_it_parses_without_a_single_error_tracked_or_not(lesson_mail: LessonMail) -> None:
    # Browsers forgive a stray quote or a misplaced tag; strict mail-client sanitizers drop what
    # they cannot parse, and the unsubscribe link the law requires may go with it.
    tracked = track_links(Signer(SECRET_KEY), BASE_URL, lesson_mail.html, delivery_id=42)
    assert tracked != lesson_mail.html, "the lesson has no link to track"
    for html in (lesson_mail.html, tracked):
        parser = html5lib.HTMLParser(strict=False)
        parser.parse(html)
        assert parser.errors == []
    document = Document(tracked)
    assert all("content" in meta.attrs for meta in document.all("meta") if "name" in meta.attrs)
    own = [a.attrs["href"] for a in document.all("a") if "/unsubscribe/" in a.attrs["href"]]
    assert own and all(re.fullmatch(rf"{BASE_URL}/unsubscribe/[\w.-]+", href) for href in own)


def test_it_declares_light_and_dark_and_keeps_text_readable(lesson_mail: LessonMail) -> None:
    """Clients that darken a message on their own (Outlook.com, Gmail apps) leave alone what is
    declared; every coloured text therefore sits on a background of its own colour scheme, chosen
    here, with at least the WCAG AA contrast of 4.5:1 (3:1 for the 20 px headings)."""
    document = Document(lesson_mail.html)
    schemes = {
        meta.attrs.get("name"): meta.attrs.get("content", "")
        for meta in document.all("meta")
        if meta.attrs.get("name") in ("color-scheme", "supported-color-schemes")
    }
    assert schemes == {"color-scheme": "light dark", "supported-color-schemes": "light dark"}
    body_style = document.one("body").style()
    assert body_style.get("background-color") and body_style.get("color")

    checked = 0
    for element in document.elements:
        colour = element.style().get("color")
        if not colour or not document.text_of(element).strip() or _hidden(element):
            continue
        background = _background_of(element)
        ratio = _contrast(colour, background)
        large = element.tag in ("h1", "h2") or element.style().get("font-size") in ("20px", "22px")
        assert ratio >= (3.0 if large else 4.5), (
            f"<{element.tag} class={element.attrs.get('class')!r}>: {colour} on {background} "
            f"is {ratio:.2f}:1: {document.text_of(element).strip()[:60]!r}"
        )
        checked += 1
    assert checked > 20


def test_layout_is_tables_marked_presentation(lesson_mail: LessonMail) -> None:
    html = lesson_mail.html
    tables = Document(html).all("table")

    assert len(tables) >= 3
    assert [t.attrs.get("role") for t in tables] == ["presentation"] * len(tables)
    # The Outlook-only table inside a conditional comment, too: screen readers read Outlook's mail.
    ghost_tables = re.findall(r"<!--\[if mso\]>(.*?)<!\[endif\]-->", html, flags=re.DOTALL)
    assert ghost_tables, "no fixed-width table for Outlook, which ignores max-width"
    for ghost in ghost_tables:
        for table in re.findall(r"<table\b[^>]*>", ghost):
            assert 'role="presentation"' in table


def test_the_content_column_is_at_most_600px_and_shrinks(lesson_mail: LessonMail) -> None:
    document = Document(lesson_mail.html)
    [container] = [t for t in document.all("table") if "container" in t.classes()]
    style = container.style()

    assert style.get("max-width") == f"{COLUMN_MAX}px"
    assert style.get("width") == "100%"
    assert container.attrs.get("width") == "100%"
    # Nothing inside may be wider than the column, or fixed so wide that it would not shrink.
    for element in document.elements:
        for width in (element.attrs.get("width", ""), element.style().get("width", "")):
            if width.removesuffix("px").isdigit():
                assert int(width.removesuffix("px")) <= COLUMN_MAX, (element.tag, width)
            else:
                assert width in ("", "100%", "auto"), (element.tag, width)
    assert 'width="600"' in lesson_mail.html  # the Outlook table, whose width is its own


def test_every_style_is_inline_and_nothing_is_fetched_or_run(lesson_mail: LessonMail) -> None:
    document = Document(lesson_mail.html)

    assert document.all("script") == []
    assert [link.attrs for link in document.all("link")] == []
    assert not [e.tag for e in document.elements if any(a.startswith("on") for a in e.attrs)]
    # What is left in <style> is only for clients that can use it: @media rules (phone padding,
    # dark mode). Every plain rule was inlined, so a client that drops <style> loses nothing else.
    for style in document.all("style"):
        css = re.sub(r"/\*.*?\*/", "", document.text_of(style), flags=re.DOTALL)
        assert _outside_media_rules(css).strip() == "", css
    for cls in ("header", "content", "footer", "button-link"):
        styled = [e for e in document.elements if cls in e.classes()]
        assert styled, f"no element of class {cls}"
        assert all(e.style() for e in styled), f".{cls} has no inline style"
    for element in document.all("p") + document.all("h1") + document.all("h2"):
        assert "margin" in element.style(), f"<{element.tag}> has no inline margin"


def test_images_have_alt_width_and_height(lesson_mail: LessonMail) -> None:
    """Images blocked by default (most clients) must leave a described box of the right size."""
    images = Document(lesson_mail.html).all("img")

    missing = [
        image.attrs.get("src")
        for image in images
        if "alt" not in image.attrs or not image.attrs.get("width") or not image.attrs.get("height")
    ]
    assert missing == [], f"images without alt, width or height: {missing}"
    assert all(image.attrs["src"].startswith("https://") for image in images)


def test_the_preheader_is_hidden_and_says_what_the_lesson_is_about(lesson_mail: LessonMail) -> None:
    document = Document(lesson_mail.html)
    body = document.one("body")
    first = next(e for e in document.elements if e.parents and e.parents[-1] is body)
    style = first.style()

    assert "preheader" in first.classes(), "the preheader must come first in the body"
    preview = document.text_of(first).strip(" \u034f\u200c\u00a0")
    assert preview == lesson_mail.front_matter["preheader"]
    assert style.get("display") == "none"
    assert style.get("max-height") == "0"
    assert style.get("overflow") == "hidden"
    assert style.get("mso-hide") == "all"
    # Not hidden by colour (see test_spamassassin): that is what filters look for.
    assert "color" not in style


def test_the_html_part_stays_under_gmails_clipping_size(lesson_mail: LessonMail) -> None:
    size = len(lesson_mail.html_bytes)

    assert size < GMAIL_CLIPS_AT, f"{lesson_mail.name}: HTML part of {size} bytes; Gmail clips it"
    assert len(lesson_mail.data) < GMAIL_CLIPS_AT


def _hidden(element: Element) -> bool:
    return any(e.style().get("display") == "none" for e in (element, *element.parents))


def _background_of(element: Element) -> str:
    for candidate in (element, *reversed(element.parents)):
        style = candidate.style()
        background = style.get("background-color") or candidate.attrs.get("bgcolor")
        if background:
            return background
    raise AssertionError(f"<{element.tag}> has no background on itself or any ancestor")


def _contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: str) -> float:
    assert re.fullmatch(r"#[0-9a-f]{6}", colour), f"not a #rrggbb colour: {colour}"
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _outside_media_rules(css: str) -> str:
    """`css` without its @media blocks (matched by counting braces)."""
    kept, index = [], 0
    while (start := css.find("@media", index)) != -1:
        kept.append(css[index:start])
        depth, position = 0, css.index("{", start)
        while True:
            depth += {"{": 1, "}": -1}.get(css[position], 0)
            position += 1
            if depth == 0:
                break
        index = position
    kept.append(css[index:])
    return "".join(kept)
