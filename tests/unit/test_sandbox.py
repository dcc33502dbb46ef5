"""A course author's templates run in Jinja2's sandbox: the classic server-side template injection
payloads reach no Python internals, whether `courses check` meets them (one `file:line: message`
problem, at the payload's line) or a message is built (a template error, before anything runs),
and `range()` is capped so a loop of a billion turns fails at once instead of hanging.

What authors really write (the shipped course, filters, loops, `namespace`, the layouts) still renders.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from dripcourse.courses.catalog import (
    SAMPLE_LINKS,
    SAMPLE_RECIPIENT,
    check_course,
    renderer_for_source,
)
from dripcourse.courses.files import read_course
from dripcourse.mail.rendering import Recipient

SHIPPED = Path(__file__).resolve().parents[2] / "emails" / "runners"

COURSE_TOML = [
    'title = "Test course"',
    'brand = "Test Physio"',
    "",
    "[sender]",
    'name = "Test Physio"',
    'email = "course@test.example"',
    "",
    "[footer]",
    'postal_address = "1 Example Street"',
]
FRONT_MATTER = ["+++", 'subject = "Lesson: feet"', 'preheader = "Feet"', 'title = "Feet"', "+++"]
PAYLOAD_LINE = len(FRONT_MATTER) + 3
"""The body is "Hello,", "", then the payload: its line in the lesson file."""

ESCAPES = {
    "cycler globals, os.popen": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "str mro subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "tuple base subclasses": "{{ ().__class__.__base__.__subclasses__() }}",
    "template context": "{{ self._TemplateReference__context }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "joiner globals via attr filter": "{{ joiner|attr('__init__')|attr('__globals__') }}",
    "escaped name via attr filter": '{{ namespace|attr("\\x5f\\x5finit\\x5f\\x5f") }}',
    "our own objects": "{{ subscriber.__class__.__init__.__globals__ }}",
    "through an undefined name": "{{ config.__class__.__init__.__globals__ }}",
    "format string": "{{ '{0.__class__.__mro__}'.format(subscriber) }}",
    "dict.update by set": "{% set x = {} %}{% set y = x.update({'a': 1}) %}{{ x }}",
    "list.append": "{% set x = [] %}{{ x.append(1) }}",
    "settings changed in place": "{{ course.update({'title': 'pwned'}) }}",
    "range of a billion, looped": "{% for i in range(10**9) %}{% endfor %}",
    "range of a billion, measured": "{{ range(10**9)|length }}",
}
NOT_THERE = {
    "Flask's request": "{{ request.application.__globals__ }}",
    "Flask's config": "{{ config.items() }}",
}


def write_course(tmp_path: Path, body: list[str], subject: str = "Lesson: feet") -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "course.toml").write_text("\n".join(COURSE_TOML) + "\n", encoding="utf-8")
    front_matter = [
        f"subject = {subject!r}" if line.startswith("subject") else line for line in FRONT_MATTER
    ]
    lesson = [*front_matter, *body]
    (folder / "01-feet.md").write_text("\n".join(lesson) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("payload", list(ESCAPES.values()), ids=list(ESCAPES))
def test_check_refuses_each_escape_at_its_line(tmp_path: Path, payload: str) -> None:
    folder = write_course(tmp_path, ["Hello,", "", payload, "", "Bye."])

    problems = [str(problem) for problem in check_course(read_course(folder))]

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{folder / '01-feet.md'}:{PAYLOAD_LINE}: body: ")
    # Asked of an undefined name, the first mistake is the one reported: the unknown variable.
    assert any(why in problems[0] for why in ("is unsafe", "range() of", "unknown variable"))


@pytest.mark.parametrize("payload", list(ESCAPES.values()), ids=list(ESCAPES))
def test_building_a_message_refuses_each_escape(tmp_path: Path, payload: str) -> None:
    """What the dispatcher meets if a lesson was changed after its check: a template error."""
    folder = write_course(tmp_path, ["Hello,", "", payload])
    source = read_course(folder)
    renderer = renderer_for_source(source)

    with pytest.raises(jinja2.TemplateError):
        renderer.render_in_full(source.lessons[0].key, SAMPLE_RECIPIENT, SAMPLE_LINKS)


def test_an_escape_in_the_subject_is_reported_at_the_subject_line(tmp_path: Path) -> None:
    folder = write_course(tmp_path, ["Hello."], subject="{{ lipsum.__globals__ }}")

    (problem,) = [str(problem) for problem in check_course(read_course(folder))]

    assert problem.startswith(f"{folder / '01-feet.md'}:2: subject: ")
    assert "unsafe" in problem


def test_an_escape_in_a_course_layout_is_refused(tmp_path: Path) -> None:
    folder = write_course(tmp_path, ["Hello."])
    (folder / "layout.txt").write_text(
        "{% block body %}{% endblock %}\n{{ cycler.__init__.__globals__ }}\n", encoding="utf-8"
    )

    (problem,) = [str(problem) for problem in check_course(read_course(folder))]

    assert problem.startswith(f"{folder / 'layout.txt'}:2: layout: ")
    assert "unsafe" in problem


@pytest.mark.parametrize("payload", list(NOT_THERE.values()), ids=list(NOT_THERE))
def test_the_globals_of_web_frameworks_do_not_exist(tmp_path: Path, payload: str) -> None:
    folder = write_course(tmp_path, ["Hello,", "", payload])

    (problem,) = [str(problem) for problem in check_course(read_course(folder))]

    assert problem.startswith(f"{folder / '01-feet.md'}:{PAYLOAD_LINE}: body: ")
    assert "unknown variable" in problem


def test_a_range_up_to_the_cap_still_works(tmp_path: Path) -> None:
    folder = write_course(tmp_path, ["{{ range(100_000)|length }} and {{ range(3)|join(',') }}"])
    source = read_course(folder)

    assert check_course(source) == []
    rendered = renderer_for_source(source).render(
        source.lessons[0].key, SAMPLE_RECIPIENT, SAMPLE_LINKS
    )
    assert "100000 and 0,1,2" in rendered.text


def test_what_authors_write_still_renders(tmp_path: Path) -> None:
    expected = {
        "Hi {{ subscriber.first_name }}, lesson {{ lesson.number }} of {{ lesson.total }}.": (
            "Hi ann, lesson 1 of 1."
        ),
        "{% if subscriber.name %}Dear {{ subscriber.name|title }}{% else %}Hi{% endif %}": (
            "Dear Ann Lee"
        ),
        "{{ course.title|upper }}, {{ course.brand|lower|replace('physio', 'clinic') }}": (
            "TEST COURSE, test clinic"
        ),
        "{{ course.links.get('shop', 'no shop') }}, {{ lesson.topics|length }}": "no shop, 0",
        "{{ '%s-%s'|format('a', 'b') }} {{ '{}!'.format('hey') }} {{ 'a b'.split()|last }}": (
            "a-b hey! b"
        ),
        "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}{{ ns.n }} {{ [3, 1, 2]|sort|join(',') }} {{ 2 ** 10 }}": "6 1,2,3 1024",
    }
    folder = write_course(tmp_path, [line for template in expected for line in (template, "")])
    source = read_course(folder)
    renderer = renderer_for_source(source)

    assert check_course(source) == []
    ann = Recipient("ann@example.com", "ann lee")
    text = renderer.render(source.lessons[0].key, ann, SAMPLE_LINKS).text
    assert [line for line in expected.values() if line not in text] == []


def test_the_shipped_course_renders_the_same_in_the_sandbox() -> None:
    """Every shipped lesson through both layouts (which use filters, macros, `namespace`,
    `range`, `dict.get` and `str.split`), for the sample subscriber."""
    source = read_course(SHIPPED)

    assert check_course(source) == []
    renderer = renderer_for_source(source)
    for lesson in source.lessons:
        full = renderer.render_in_full(lesson.key, SAMPLE_RECIPIENT, SAMPLE_LINKS)
        assert renderer.render(lesson.key, SAMPLE_RECIPIENT, SAMPLE_LINKS) == full
        assert "Hi Sam," in full.text and "Unsubscribe" in full.html
