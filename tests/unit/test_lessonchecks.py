"""A course author's warnings (lessonchecks.py): a course that renders but would read badly in an
inbox gets `file:line: warning: ...` for each thing, at the line that holds it.

Each test writes a small course into tmp_path, line by line, so the expected line numbers can be
read off the test itself.
"""

from __future__ import annotations

from pathlib import Path

from dripcourse.courses.catalog import SAMPLE_RECIPIENT, check_course, renderer_for_source
from dripcourse.courses.checks import GMAIL_CLIP_BYTES, course_warnings, lesson_warnings
from dripcourse.courses.files import read_course
from dripcourse.mail.rendering import Links

SHIPPED = Path(__file__).resolve().parents[2] / "emails" / "runners"

COURSE_TOML = [
    'title = "Test course"',  # 1
    'brand = "Test Physio"',  # 2
    "",  # 3
    "[sender]",  # 4
    'name = "Test Physio"',  # 5
    'email = "course@test.example"',  # 6
    "",  # 7
    "[footer]",  # 8
    'postal_address = "1 Example Street"',  # 9
]


def front_matter(subject: str = "Lesson: feet", preheader: str | None = "Feet first") -> list[str]:
    """Lines 1-4 (or 1-3 without a preheader) of a lesson file; the body starts after them."""
    lines = ["+++", f"subject = {subject!r}"]
    if preheader is not None:
        lines.append(f"preheader = {preheader!r}")
    return [*lines, 'title = "Feet"', "+++"]


def write_course(
    tmp_path: Path,
    lessons: dict[str, list[str]],
    toml: list[str] = COURSE_TOML,
    layout_html: list[str] | None = None,
) -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "course.toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
    for name, lines in lessons.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if layout_html is not None:
        (folder / "layout.html").write_text("\n".join(layout_html) + "\n", encoding="utf-8")
    return folder


def warnings_of(folder: Path) -> list[str]:
    return [str(warning) for warning in course_warnings(read_course(folder))]


def test_the_shipped_course_has_no_warnings() -> None:
    assert warnings_of(SHIPPED) == []


def test_a_clean_small_course_has_no_warnings(tmp_path: Path) -> None:
    folder = write_course(
        tmp_path, {"01-feet.md": [*front_matter(), "Read [the guide](https://test.example/guide)."]}
    )

    assert warnings_of(folder) == []


def test_a_long_subject_is_reported_at_its_line_with_its_rendered_length(tmp_path: Path) -> None:
    # 78 characters once the sample subscriber's first name ("Sam") is filled in.
    subject = (
        "{{ subscriber.first_name }}, this week: your knees, why they ache on hills, "
        "and what helps them settle"
    )
    folder = write_course(tmp_path, {"01-knees.md": [*front_matter(subject), "Hello."]})

    assert warnings_of(folder) == [
        f"{folder / '01-knees.md'}:2: warning: subject is 78 characters; "
        "many inboxes cut it at about 70"
    ]


def test_a_subject_of_exactly_70_characters_passes(tmp_path: Path) -> None:
    folder = write_course(tmp_path, {"01-knees.md": [*front_matter("x" * 70), "Hello."]})

    assert warnings_of(folder) == []


def test_a_missing_preheader_is_reported_at_the_front_matter(tmp_path: Path) -> None:
    folder = write_course(tmp_path, {"01-feet.md": [*front_matter(preheader=None), "Hello."]})

    (warning,) = warnings_of(folder)

    assert warning.startswith(f"{folder / '01-feet.md'}:1: warning: no preheader")


def test_an_empty_preheader_is_reported_at_its_own_line(tmp_path: Path) -> None:
    folder = write_course(tmp_path, {"01-feet.md": [*front_matter(preheader=" "), "Hello."]})

    (warning,) = warnings_of(folder)

    assert warning.startswith(f"{folder / '01-feet.md'}:3: warning: no preheader")


def test_links_in_the_body_are_reported_at_their_lines(tmp_path: Path) -> None:
    lesson = [
        *front_matter(),  # lines 1-5
        "Hello,",  # 6
        "",  # 7
        "See [our old site](http://test.example/old) and",  # 8
        "[the booking page](/book).",  # 9
        "",  # 10
        "Write to [us](mailto:hello@test.example) or [call](tel:+15555550100).",  # 11
        "And once more: [old site](http://test.example/old).",  # 12
    ]
    folder = write_course(tmp_path, {"01-feet.md": lesson})
    file = folder / "01-feet.md"

    assert warnings_of(folder) == [
        f"{file}:8: warning: link http://test.example/old is not https",
        f"{file}:9: warning: relative link '/book': an email has no address to resolve it "
        "against (write the full https:// address)",
        f"{file}:12: warning: link http://test.example/old is not https",
    ]


def test_a_course_toml_link_shown_in_every_lesson_is_one_warning_at_its_line(
    tmp_path: Path,
) -> None:
    toml = [
        *COURSE_TOML,
        "",  # 10
        "[call_to_action]",  # 11
        'heading = "Book"',  # 12
        'label = "Book now"',  # 13
        'url = "http://test.example/book"',  # 14
    ]
    lessons = {
        "01-feet.md": [*front_matter(), "Hello."],
        "02-knees.md": [*front_matter(), "Hello again."],
    }
    folder = write_course(tmp_path, lessons, toml)

    assert warnings_of(folder) == [
        f"{folder / 'course.toml'}:14: warning: link http://test.example/book is not https"
    ]


def test_an_unused_course_toml_link_is_still_checked(tmp_path: Path) -> None:
    toml = [*COURSE_TOML, "", "[links]", 'shop = "shop.test.example"']  # line 12
    folder = write_course(tmp_path, {"01-feet.md": [*front_matter(), "Hello."]}, toml)

    (warning,) = warnings_of(folder)

    assert warning.startswith(f"{folder / 'course.toml'}:12: warning: relative link 'shop.test")


def test_a_related_link_in_the_front_matter_is_reported_at_its_line(tmp_path: Path) -> None:
    lesson = [
        "+++",
        'subject = "Knees"',
        'preheader = "Knees"',
        'title = "Knees"',
        "",
        "[[related]]",  # 6
        'title = "Runner\'s knee"',
        'url = "http://test.example/blog/knee"',  # 8
        "+++",
        "Hello.",
    ]
    folder = write_course(tmp_path, {"01-knees.md": lesson})

    assert warnings_of(folder) == [
        f"{folder / '01-knees.md'}:8: warning: link http://test.example/blog/knee is not https"
    ]


def test_a_markdown_image_is_a_problem_of_its_own_not_a_warning(tmp_path: Path) -> None:
    """Lesson images come from the course folder: an address, or no alt text, is a problem
    (courses/media.py, tests/unit/test_course_images.py), never also a warning."""
    lesson = [
        *front_matter(),  # lines 1-5
        "![](https://test.example/arch.png)",  # 6
        "",
        "![A high arch, seen from the inside](https://test.example/arch.png)",  # 8
        "",
        "![A flat foot](http://test.example/flat.png)",  # 10
    ]
    folder = write_course(tmp_path, {"01-feet.md": lesson})

    assert warnings_of(folder) == []
    assert [str(p).split(": ", 1)[0] for p in check_course(read_course(folder))] == [
        # Line 6: no alt text, and an address; line 8's address is line 6's, said once.
        f"{folder / '01-feet.md'}:{line}"
        for line in (6, 6, 10)
    ]


def test_layout_images_need_alt_and_width_unless_decorative(tmp_path: Path) -> None:
    layout = [
        "<html><body>",  # 1
        '<img src="https://test.example/logo.png">',  # 2
        '<img src="https://test.example/rule.png" alt="" role="presentation" width="600">',  # 3
        '<img src="https://test.example/team.png" alt="Our team" width="600">',  # 4
        "{% block body %}{% endblock %}",
        "</body></html>",
    ]
    folder = write_course(tmp_path, {"01-feet.md": [*front_matter(), "Hello."]}, layout_html=layout)
    file = folder / "layout.html"

    assert warnings_of(folder) == [
        f"{file}:2: warning: image https://test.example/logo.png has no alt text "
        "(what readers see when images are off)",
        f"{file}:2: warning: image https://test.example/logo.png has no width attribute; "
        "Outlook shows it at its full size",
    ]


def test_an_html_part_near_gmails_clipping_limit_is_reported_with_its_size(
    tmp_path: Path,
) -> None:
    paragraph = "Keep your knee over your toes and move slowly through the whole range. " * 10
    big = [*front_matter(), *[paragraph + "\n" for _ in range(int(GMAIL_CLIP_BYTES / 700))]]
    small = [*front_matter(), *[paragraph + "\n" for _ in range(20)]]
    folder = write_course(tmp_path, {"01-big.md": big, "02-small.md": small})

    (warning,) = warnings_of(folder)

    assert warning.startswith(f"{folder / '01-big.md'}:1: warning: the HTML part is ")
    size = int(warning.split("the HTML part is ")[1].split(" bytes")[0].replace(",", ""))
    assert size > GMAIL_CLIP_BYTES * 0.8
    assert "near the clipping limit" in warning
    assert f"over {GMAIL_CLIP_BYTES:,} bytes" in warning


def test_the_products_own_links_are_never_warned_about(tmp_path: Path) -> None:
    folder = write_course(tmp_path, {"01-feet.md": [*front_matter(), "Hello."]})
    source = read_course(folder)
    # A development server's links: plain http on localhost.
    own = Links(
        unsubscribe="http://localhost:8000/unsubscribe/abc",
        view_online="http://localhost:8000/view/abc",
    )
    rendered = renderer_for_source(source).render("feet", SAMPLE_RECIPIENT, own)
    assert own.unsubscribe in rendered.html

    assert lesson_warnings(source, source.lessons[0], rendered, own_links=own) == []


def test_a_course_with_problems_gets_no_warnings(tmp_path: Path) -> None:
    folder = write_course(
        tmp_path, {"01-feet.md": [*front_matter(preheader=None), "Hello."]}, toml=COURSE_TOML[:3]
    )
    source = read_course(folder)
    assert source.problems

    assert course_warnings(source) == []


def test_files_like_lessons_not_named_like_one_are_one_warning(tmp_path: Path) -> None:
    lesson = [*front_matter(), "Hello."]
    folder = write_course(
        tmp_path,
        {
            "01-feet.md": lesson,
            "ankles.md": lesson,
            "knees-draft.md": lesson,
            "README.md": ["# Notes for the authors", "", "Not a lesson, and not warned about."],
        },
    )

    assert [lesson.file.name for lesson in read_course(folder).lessons] == ["01-feet.md"]
    assert warnings_of(folder) == [
        f"{folder / 'ankles.md'}:1: warning: not read as lessons: ankles.md, knees-draft.md "
        "(a lesson file's name starts with its number, like 01-feet.md)"
    ]


def test_a_course_without_lessons_still_says_which_files_were_not_read(tmp_path: Path) -> None:
    folder = write_course(tmp_path, {"feet.md": [*front_matter(), "Hello."]})
    source = read_course(folder)

    assert [str(p) for p in source.problems] == [
        f"{folder / 'course.toml'}:1: the course has no lessons "
        "(no NN-name.md files beside course.toml)"
    ]
    assert [str(w) for w in course_warnings(source)] == [
        f"{folder / 'feet.md'}:1: warning: not read as lessons: feet.md "
        "(a lesson file's name starts with its number, like 01-feet.md)"
    ]
