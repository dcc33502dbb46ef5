"""The built-in layouts: what a subscriber's mail client gets, in HTML (after inlining) and in text.

The environment is built as the renderer builds it: StrictUndefined, trim_blocks, lstrip_blocks,
autoescape on for HTML and off for text, and the lesson body given as a child template's block.
"""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any, ClassVar

import css_inline
import jinja2
import pytest

from dripcourse.mail.plaintext import markdown_to_html, markdown_to_text

UNSUBSCRIBE = (
    "https://northside-physio.example/unsubscribe/"
    "eyJzdWJzY3JpYmVyIjoxMjM0NTY3LCJjb3Vyc2UiOiJydW5uZXJzIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
)
VIEW_ONLINE = "https://northside-physio.example/view/eyJkZWxpdmVyeSI6OTg3NjV9.c2ln?x=1&y=2"
ADDRESS = "12 Example Street, Toronto ON, Canada"


def full_context() -> dict[str, Any]:
    related = [
        {
            "title": "How to choose a foam roller",
            "url": "https://northside-physio.example/blog/foam-rollers",
            "summary": "Firm or soft, long or short: what matters and what does not.",
        },
        {
            "title": "Warming up in the cold",
            "url": "https://northside-physio.example/blog/cold-warm-up",
            "summary": None,
        },
    ]
    return {
        "course": {
            "title": "Runners E-Course",
            "description": "Ten weeks of mobility and strength for runners.",
            "brand": "Northside Physio",
            "language": "en",
            "sender": {
                "name": "Northside Physio",
                "email": "course@northside-physio.example",
                "reply_to": "hello@northside-physio.example",
            },
            "contact": {"email": "hello@northside-physio.example", "phone": "+1 416 555 0100"},
            "footer": {"postal_address": ADDRESS},
            "call_to_action": {
                "heading": "Want a plan made for you?",
                "text": "A physiotherapist watches you run, tests what this course tests, "
                "and writes a programme for your body and your race.",
                "label": "Book an appointment",
                "url": "https://northside-physio.example/book?source=course&lesson=3",
            },
            "links": {
                "website": "https://northside-physio.example",
                "equipment": "https://northside-physio.example/equipment",
            },
            "related": related,
            "theme": {"accent": "#0f766e"},
        },
        "lesson": {
            "number": 3,
            "total": 10,
            "title": "Feet first",
            "subject": "Lesson 3: Feet first",
            "preheader": "Why your stride starts where your foot meets the ground",
            "topics": [
                "Why the foot is a spring, not a brick",
                "A two-minute check of your arches, done at home with a mirror and a sheet "
                "of paper",
            ],
            "exercises": [
                {
                    "name": "Towel scrunches",
                    "dose": "2 x 20, daily",
                    "instructions": "Sit with one foot flat on a towel and draw the towel "
                    "towards you with your toes, heel on the floor throughout.",
                },
                {
                    "name": "Short foot",
                    "dose": None,
                    "instructions": "Lift the arch without curling the toes; hold for five "
                    "breaths.",
                },
                {"name": "Calf raises", "dose": "3 x 12", "instructions": "Slow on the way down."},
            ],
            "equipment": ["a towel", "a tennis ball"],
            "teaser": "Next time: ankles, and why stiff ones make your knees work harder.",
            "related": related,
        },
        "subscriber": {
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "first_name": "Ada",
            "timezone": "Europe/London",
        },
        "links": {"unsubscribe": UNSUBSCRIBE, "view_online": VIEW_ONLINE},
    }


def minimal_context() -> dict[str, Any]:
    context = full_context()
    course, lesson = context["course"], context["lesson"]
    course.update(
        description=None,
        contact={"email": None, "phone": None},
        call_to_action=None,
        links={},
        related=[],
    )
    course["sender"]["reply_to"] = None
    lesson.update(preheader=None, topics=[], exercises=[], equipment=[], teaser=None, related=[])
    return context


def environment(*, html: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dripcourse", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: dict[str, Any], body: str = "<p>Hello</p>") -> str:
    source = '{% extends "layout.html" %}{% block body %}' + body + "{% endblock %}"
    html: str = css_inline.inline(environment(html=True).from_string(source).render(context))
    return html


def render_text(context: dict[str, Any], body: str = "Hello\n") -> str:
    source = '{% extends "layout.txt" %}{% block body %}' + body + "{% endblock %}"
    return environment(html=False).from_string(source).render(context)


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text = ""

    def style(self) -> dict[str, str]:
        declarations = (part.split(":", 1) for part in self.attrs.get("style", "").split(";"))
        return {
            name.strip().lower(): value.strip()
            for name, value in (d for d in declarations if len(d) == 2)
        }

    def all_text(self) -> str:
        return self.text + "".join(child.all_text() for child in self.children)

    def iter(self) -> list[Element]:
        return [self, *(e for child in self.children for e in child.iter())]


class Document(HTMLParser):
    """A small DOM: enough to ask where things are, what they say and how they are styled."""

    VOID: ClassVar[frozenset[str]] = frozenset(
        ["area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"]
    )

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root
        self.declarations: list[str] = []
        self.comments: list[str] = []
        self.feed(html)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        # Text is kept in document order by giving each run its own text node.
        node = Element("#text", {}, self.current)
        node.text = data
        self.current.children.append(node)

    def elements(self, tag: str | None = None) -> list[Element]:
        return [e for e in self.root.iter()[1:] if e.tag != "#text" and tag in (None, e.tag)]

    def by_class(self, name: str) -> Element:
        return next(e for e in self.elements() if name in e.attrs.get("class", "").split())

    def text(self) -> str:
        return " ".join(self.root.all_text().split())

    def links(self) -> dict[str, str]:
        return {" ".join(a.all_text().split()): a.attrs.get("href", "") for a in self.elements("a")}


def luminance(colour: str) -> float:
    """Relative luminance of a #rgb / #rrggbb colour (WCAG 2.x)."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture(params=["full", "minimal"])
def context(request: pytest.FixtureRequest) -> dict[str, Any]:
    return full_context() if request.param == "full" else minimal_context()


# -- HTML ----------------------------------------------------------------------------------------


def test_html_is_a_complete_document_with_the_email_metadata(context: dict[str, Any]) -> None:
    html = render_html(context)
    doc = Document(html)

    assert [d.lower() for d in doc.declarations] == ["doctype html"]
    assert html.lower().startswith("<!doctype html>")
    assert doc.elements("html")[0].attrs["lang"] == "en"
    assert doc.elements("title")[0].all_text() == "Lesson 3: Feet first"
    metas = doc.elements("meta")
    assert any(m.attrs.get("charset", "").lower() == "utf-8" for m in metas)
    named = {m.attrs["name"]: m.attrs.get("content", "") for m in metas if "name" in m.attrs}
    assert named["color-scheme"] == "light dark"
    assert named["supported-color-schemes"] == "light dark"
    assert "width=device-width" in named["viewport"]


def test_html_has_no_script_external_styles_or_fonts(context: dict[str, Any]) -> None:
    html = render_html(context)
    doc = Document(html)

    assert doc.elements("script") == []
    assert doc.elements("link") == []
    assert doc.elements("img") == []
    assert "@import" not in html
    assert "@font-face" not in html
    assert "url(" not in html


def test_layout_tables_are_presentational(context: dict[str, Any]) -> None:
    doc = Document(render_html(context))

    tables = doc.elements("table")
    assert len(tables) >= 2
    for table in tables:
        assert table.attrs.get("role") == "presentation"
        assert table.attrs.get("cellpadding") == "0"
        assert table.attrs.get("cellspacing") == "0"


def test_nothing_is_wider_than_600px(context: dict[str, Any]) -> None:
    html = render_html(context)
    doc = Document(html)

    for element in doc.elements():
        width = element.attrs.get("width")
        if width is not None:
            assert width.endswith("%") or int(width) <= 600, element.attrs
        for name, value in element.style().items():
            if name in ("width", "min-width", "max-width"):
                for pixels in re.findall(r"(\d+(?:\.\d+)?)px", value):
                    assert float(pixels) <= 600, (name, value)
    # Outlook's ghost table lives in a conditional comment; it too stays at 600.
    for comment in doc.comments:
        assert all(int(w) <= 600 for w in re.findall(r'width="(\d+)"', comment))
    column = next(t for t in doc.elements("table") if "max-width" in t.style())
    assert column.style()["max-width"] == "600px"
    assert column.attrs["width"] == "100%"


def test_long_words_wrap_instead_of_scrolling(context: dict[str, Any]) -> None:
    doc = Document(render_html(context))

    content = doc.by_class("content")
    assert content.style()["word-break"] == "break-word"
    assert content.style()["overflow-wrap"] == "anywhere"


def test_the_preheader_is_hidden_right_after_body() -> None:
    doc = Document(render_html(full_context()))

    body = doc.elements("body")[0]
    first = next(child for child in body.children if child.tag != "#text")
    assert first.tag == "div"
    assert first.all_text().startswith("Why your stride starts where your foot meets the ground")
    style = first.style()
    assert style["display"] == "none"
    assert style["max-height"] == "0"
    assert style["overflow"] == "hidden"
    assert style["mso-hide"] == "all"


def test_without_a_preheader_nothing_hidden_is_sent() -> None:
    doc = Document(render_html(minimal_context()))

    assert not [e for e in doc.elements() if e.style().get("display") == "none"]


def test_sections_come_in_reading_order() -> None:
    doc = Document(render_html(full_context()))
    text = " ".join(doc.elements("body")[0].all_text().split())

    order = [
        "Northside Physio",
        "Runners E-Course",
        "Lesson 3 of 10",
        "Feet first",
        "In this lesson",
        "Why the foot is a spring, not a brick",
        "Hello",
        "Exercises",
        "Towel scrunches",
        "You will need: a towel, a tennis ball",
        "Coming next",
        "Next time: ankles",
        "hello@northside-physio.example",
        "Want a plan made for you?",
        "Book an appointment",
        "How to choose a foam roller",
        ADDRESS,
        "You are receiving this because you signed up for Runners E-Course",
        "View this email in your browser",
        "Unsubscribe",
    ]
    positions = [
        text.find(words, text.find("Lesson 3 of 10") if i > 3 else 0)
        for i, words in enumerate(order)
    ]
    assert -1 not in positions, [w for w, p in zip(order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


def test_the_lesson_heading_and_exercises() -> None:
    doc = Document(render_html(full_context()))

    h1 = doc.elements("h1")
    assert [" ".join(h.all_text().split()) for h in h1] == ["Feet first"]
    exercises = doc.elements("ol")[0]
    items = [child for child in exercises.children if child.tag == "li"]
    assert [" ".join(li.all_text().split()) for li in items] == [
        "Towel scrunches — 2 x 20, daily Sit with one foot flat on a towel and draw the towel "
        "towards you with your toes, heel on the floor throughout.",
        "Short foot Lift the arch without curling the toes; hold for five breaths.",
        "Calf raises — 3 x 12 Slow on the way down.",
    ]
    names = [e.all_text() for li in items for e in li.iter() if e.tag == "strong"]
    assert names == ["Towel scrunches", "Short foot", "Calf raises"]


def test_links_point_where_they_say(context: dict[str, Any]) -> None:
    doc = Document(render_html(context))
    links = doc.links()

    assert links["Unsubscribe"] == UNSUBSCRIBE
    assert links["View this email in your browser"] == VIEW_ONLINE
    assert ADDRESS in doc.text()


def test_optional_sections_appear_only_with_their_data() -> None:
    full = Document(render_html(full_context()))
    minimal = Document(render_html(minimal_context()))

    assert full.links()["hello@northside-physio.example"] == "mailto:hello@northside-physio.example"
    assert full.links()["See the equipment we recommend"] == (
        "https://northside-physio.example/equipment"
    )
    assert full.links()["Warming up in the cold"].endswith("/cold-warm-up")
    for words in (
        "In this lesson",
        "Exercises",
        "You will need",
        "Coming next",
        "Questions",
        "Book an appointment",
        "Further reading",
    ):
        assert words in full.text()
        assert words not in minimal.text()
    assert set(minimal.links()) == {"View this email in your browser", "Unsubscribe"}


def test_equipment_without_a_link_is_still_listed() -> None:
    context = minimal_context()
    context["lesson"]["equipment"] = ["a step"]

    doc = Document(render_html(context))

    assert "You will need: a step" in doc.text()
    assert "See the equipment we recommend" not in doc.links()


def test_the_call_to_action_is_a_bulletproof_button() -> None:
    doc = Document(render_html(full_context()))

    button = next(a for a in doc.elements("a") if a.all_text() == "Book an appointment")
    assert button.attrs["href"] == "https://northside-physio.example/book?source=course&lesson=3"
    cell = button.parent
    assert cell is not None and cell.tag == "td"
    assert cell.attrs["bgcolor"] == "#0f766e"
    assert cell.style()["background-color"] == "#0f766e"
    assert button.style()["color"] == "#ffffff"
    assert button.style()["padding"]
    assert button.style()["display"] == "inline-block"
    assert contrast("#ffffff", "#0f766e") >= 4.5


@pytest.mark.parametrize("accent", ["#0f766e", "#fde047", "#FFF", "#1d4ed8", "#ef4444", "#000000"])
def test_button_text_stays_readable_on_any_accent(accent: str) -> None:
    context = full_context()
    context["course"]["theme"]["accent"] = accent
    doc = Document(render_html(context))

    button = next(a for a in doc.elements("a") if a.all_text() == "Book an appointment")
    cell = button.parent
    assert cell is not None
    assert contrast(button.style()["color"], cell.style()["background-color"]) >= 4.5
    link = doc.links()["See the equipment we recommend"]
    assert link
    equipment = next(a for a in doc.elements("a") if a.attrs.get("href") == link)
    assert contrast(equipment.style()["color"], "#ffffff") >= 4.5


def test_an_accent_that_is_not_a_colour_falls_back_to_the_default() -> None:
    context = minimal_context()
    context["course"]["theme"]["accent"] = "red; } body { display: none"

    doc = Document(render_html(context))

    assert not [e for e in doc.elements() if e.style().get("display") == "none"]
    header = next(td for td in doc.elements("td") if td.attrs.get("bgcolor"))
    assert header.attrs["bgcolor"] == "#0f766e"
    assert header.style()["background-color"] == "#0f766e"


def test_body_text_is_readable() -> None:
    doc = Document(render_html(full_context()))

    content = doc.by_class("content")
    assert content.style()["font-size"] == "16px"
    assert content.style()["line-height"] == "1.5"
    assert contrast(content.style()["color"], "#ffffff") >= 7
    footer = doc.by_class("footer")
    assert contrast(footer.style()["color"], "#ffffff") >= 4.5
    body = doc.elements("body")[0]
    assert "sans-serif" in body.style()["font-family"]


def test_values_are_escaped_never_markup() -> None:
    context = full_context()
    context["course"]["title"] = "Runners <b>x</b>"
    context["subscriber"]["email"] = "<b>x</b>@example.com"
    context["lesson"]["topics"] = ["<b>x</b> & more"]

    html = render_html(context)
    doc = Document(html)

    assert doc.elements("b") == []
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "signed up for Runners <b>x</b> with <b>x</b>@example.com" in doc.text()
    assert "<b>x</b> & more" in doc.text()


def test_html_stays_far_below_gmails_clipping_size() -> None:
    html = render_html(full_context())

    assert len(html.encode("utf-8")) < 40_000


def test_a_lesson_rendered_from_markdown_fits_in_the_layout() -> None:
    markdown = "Hi there,\n\nRead [the guide](https://example.com/guide).\n\n- one\n- two\n"

    doc = Document(render_html(full_context(), markdown_to_html(markdown)))

    assert doc.links()["the guide"] == "https://example.com/guide"
    body = next(div for div in doc.elements("div") if "Hi there," in div.all_text())
    assert [e.tag for e in body.children if e.tag != "#text"] == ["p", "p", "ul"]


# -- text ----------------------------------------------------------------------------------------


def test_text_has_the_footer_essentials(context: dict[str, Any]) -> None:
    text = render_text(context)

    assert UNSUBSCRIBE in text
    assert VIEW_ONLINE in text
    assert ADDRESS in text
    assert "Unsubscribe:" in text
    assert "You are receiving this because you signed up for Runners E-Course" in " ".join(
        text.split()
    )


def test_text_lines_fit_in_72_columns(context: dict[str, Any]) -> None:
    text = render_text(context)

    for line in text.split("\n"):
        assert line == line.rstrip()
        assert len(line) <= 72 or (len(line.split()) == 1 and "://" in line), line
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_text_has_no_markup_or_entities(context: dict[str, Any]) -> None:
    context["course"]["title"] = "Runners <b>x</b> & co"

    text = render_text(context)

    assert "Runners <b>x</b> & co" in text
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text, re.IGNORECASE)
    assert "<p>" not in text


def test_text_reads_like_the_html() -> None:
    text = render_text(full_context())

    assert text.startswith(
        "NORTHSIDE PHYSIO | Runners E-Course\n\nLESSON 3 OF 10\nFeet first\n==========\n\n"
        "IN THIS LESSON\n"
        "- Why the foot is a spring, not a brick\n"
        "- A two-minute check of your arches, done at home with a mirror and a\n"
        "  sheet of paper\n"
        "\nHello\n\n"
    )
    assert (
        "EXERCISES\n"
        "1. Towel scrunches — 2 x 20, daily\n"
        "   Sit with one foot flat on a towel and draw the towel towards you with\n"
        "   your toes, heel on the floor throughout.\n"
        "\n"
        "2. Short foot\n"
        "   Lift the arch without curling the toes; hold for five breaths.\n"
        "\n"
        "3. Calf raises — 3 x 12\n"
        "   Slow on the way down.\n"
    ) in text
    assert (
        "You will need: a towel, a tennis ball\n"
        "See the equipment we recommend:\n"
        "https://northside-physio.example/equipment\n"
    ) in text
    assert (
        "COMING NEXT\nNext time: ankles, and why stiff ones make your knees work harder.\n" in text
    )
    assert "Questions or feedback? Write to us at hello@northside-physio.example" in text
    assert "Want a plan made for you?\n-------------------------\n" in text
    assert (
        "Book an appointment:\nhttps://northside-physio.example/book?source=course&lesson=3\n"
    ) in text
    assert (
        "FURTHER READING\n"
        "- How to choose a foam roller\n"
        "  https://northside-physio.example/blog/foam-rollers\n"
        "  Firm or soft, long or short: what matters and what does not.\n"
        "\n"
        "- Warming up in the cold\n"
        "  https://northside-physio.example/blog/cold-warm-up\n"
    ) in text


def test_minimal_text_has_only_the_essentials() -> None:
    text = render_text(minimal_context())

    sections = [s for s in text.split("\n\n") if s]
    assert sections[:3] == [
        "NORTHSIDE PHYSIO | Runners E-Course",
        "LESSON 3 OF 10\nFeet first\n==========",
        "Hello",
    ]
    assert sections[3].startswith("-" * 72 + "\nNorthside Physio\n" + ADDRESS)
    for words in (
        "IN THIS LESSON",
        "EXERCISES",
        "You will need",
        "COMING NEXT",
        "Questions",
        "Book an appointment",
        "FURTHER READING",
    ):
        assert words not in text


def test_a_lesson_rendered_from_markdown_sits_between_blank_lines() -> None:
    markdown = "Hi there,\n\nRead [the guide](https://example.com/guide).\n"

    text = render_text(full_context(), markdown_to_text(markdown))

    assert (
        "  sheet of paper\n\nHi there,\n\nRead the guide [1].\n\nLinks:\n[1] https://example.com/guide\n\n"
        "EXERCISES\n"
    ) in text


def test_the_body_sees_the_same_context_as_the_layout() -> None:
    template = environment(html=False).from_string(
        '{% extends "layout.txt" %}{% block body %}Hi {{ subscriber.first_name }}{% endblock %}'
    )
    first, second = full_context(), copy.deepcopy(full_context())
    second["subscriber"]["first_name"] = "Grace"

    assert "Hi Ada\n" in template.render(first)
    assert "Hi Grace\n" in template.render(second)
