"""A text part worth reading: every shipped lesson's text/plain part, read from the sent message.

It is built from the lesson's Markdown (plaintext.py), not scraped from the HTML, so it has real
headings, numbered lists, links written out as footnotes, and lines a plain-text reader can show
without wrapping them again.
"""

from __future__ import annotations

import re
import tomllib

from shipped import EMAILS, SUBSCRIBER, LessonMail

WIDTH = 72
MARKDOWN_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def test_lines_fit_a_plain_text_reader(lesson_mail: LessonMail) -> None:
    too_long = [
        line
        for line in lesson_mail.text.splitlines()
        # One word that cannot be broken (a URL) may run past; anything else is wrapped.
        if len(line) > WIDTH and len(line.strip().split()) > 1
    ]

    assert too_long == []


def test_headings_are_underlined_as_in_markdown(lesson_mail: LessonMail) -> None:
    lines = lesson_mail.text.splitlines()
    title = lesson_mail.title

    assert lines[lines.index(title) + 1] == "=" * len(title)
    headings = re.findall(r"^##\s+(.+?)\s*$", lesson_mail.body_markdown, flags=re.MULTILINE)
    assert headings, f"{lesson_mail.name} has no headings in its body"
    for heading in headings:
        assert heading in lines, f"heading {heading!r} is missing"
        assert lines[lines.index(heading) + 1] == "-" * len(heading)


def test_exercises_are_numbered_with_their_dose(lesson_mail: LessonMail) -> None:
    text = lesson_mail.text
    exercises = lesson_mail.front_matter["exercises"]

    section = text[text.index("\nEXERCISES\n") :]
    flowing = " ".join(section.split())
    for number, exercise in enumerate(exercises, start=1):
        marker = f"{number}. "
        heading = f"{marker}{exercise['name']} — {exercise['dose']}"
        assert re.search(rf"^{re.escape(marker + exercise['name'])}\b", section, re.MULTILINE)
        # The dose (wrapped if long), then the instructions, hanging under the name.
        instructions = " ".join(exercise["instructions"].split())
        assert f"{' '.join(heading.split())} {instructions}" in flowing, heading
        hanging = section.split(marker + exercise["name"], 1)[1].split("\n\n", 1)[0]
        assert all(line.startswith(" " * len(marker)) for line in hanging.splitlines()[1:])


def test_links_are_written_out_as_footnotes(lesson_mail: LessonMail) -> None:
    text = lesson_mail.text
    links = MARKDOWN_LINK.findall(lesson_mail.body_markdown)

    assert "](" not in text, "Markdown link syntax leaked into the text part"
    footnotes = dict(re.findall(r"^\[(\d+)\] (https?://\S+)$", text, flags=re.MULTILINE))
    assert len(footnotes) == len({url for _, url in links})
    for label, url in links:
        [number] = [n for n, target in footnotes.items() if target == url]
        flowing = " ".join(text.split())
        assert f"{' '.join(label.split())} [{number}]" in flowing
    if links:
        assert "\nLinks:\n[1] " in text


def test_some_lessons_have_links_in_their_body() -> None:
    """The footnote check above is not vacuous: shipped lessons do link from their prose."""
    bodies = [path.read_text() for path in sorted((EMAILS / "runners").glob("*.md"))]

    assert sum(1 for body in bodies if MARKDOWN_LINK.search(body)) >= 3


def test_it_ends_with_the_unsubscribe_link_and_postal_address(lesson_mail: LessonMail) -> None:
    text = lesson_mail.text
    lines = text.splitlines()
    targets = re.findall(r"<([^>]+)>", str(lesson_mail.message["List-Unsubscribe"]))
    [unsubscribe] = [target for target in targets if target.startswith("https://")]
    course = tomllib.loads((EMAILS / lesson_mail.course / "course.toml").read_text())

    assert lines[lines.index("Unsubscribe:") + 1] == unsubscribe
    assert course["footer"]["postal_address"] in lines
    assert SUBSCRIBER.email + "." in lines


def test_it_is_text_not_html(lesson_mail: LessonMail) -> None:
    text = lesson_mail.text
    course = tomllib.loads((EMAILS / lesson_mail.course / "course.toml").read_text())

    assert not re.search(r"</?[a-z][a-z0-9]*[\s>]", text), "an HTML tag in the text part"
    assert not re.search(r"&(?:[a-z]+|#\d+);", text), "an HTML entity in the text part"
    brand = course["brand"]["name"] if isinstance(course["brand"], dict) else course["brand"]
    assert text.startswith(f"{brand.upper()} | {course['title']}\n")
    assert f"Hi {SUBSCRIBER.first_name}," in text
