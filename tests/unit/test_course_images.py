"""`courses check` and the images of a course folder (courses/media.py): each refusal is a
`file:line: message` at the line that names the image, and what passes renders with its served
address, size and alt text.

Every test writes a small course line by line, so the expected line numbers read off the test.
The attacks (a path out of the folder, a symlink out, an address, a bomb, a disguised file) are
kept here as tests.
"""

from __future__ import annotations

import io
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from dripcourse.courses import media as course_media
from dripcourse.courses.catalog import SAMPLE_RECIPIENT, check_course, renderer_for_source
from dripcourse.courses.files import read_course
from dripcourse.courses.images import MAX_SOURCE_BYTES
from dripcourse.courses.media import collect_media
from dripcourse.domain.completion import COMPLETION_KEY
from dripcourse.mail.rendering import Links

LINKS = Links("https://example.com/u/x", "https://example.com/v/x")
COURSE_TOML = [
    'title = "Test course"',  # 1
    "",  # 2
    "[brand]",  # 3
    'name = "Test Physio"',  # 4
    'logo = "logo.png"',  # 5
    "",  # 6
    "[sender]",  # 7
    'name = "Test Physio"',  # 8
    'email = "course@test.example"',  # 9
    "",  # 10
    "[footer]",  # 11
    'postal_address = "1 Example Street"',  # 12
]
FRONT = ["+++", 'subject = "Feet"', 'preheader = "Feet"', 'title = "Feet"', "+++"]  # 1-5


def png(size: tuple[int, int] = (300, 200), noisy: bool = False) -> bytes:
    image = Image.new("RGB", size, "white")
    if noisy:
        image = Image.effect_noise(size, 120).convert("RGB")
    ImageDraw.Draw(image).ellipse((10, 10, size[0] - 10, size[1] - 10), outline="navy", width=4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def course(
    tmp_path: Path,
    body: list[str],
    toml: list[str] = COURSE_TOML,
    files: dict[str, bytes] | None = None,
) -> Path:
    folder = tmp_path / "course"
    (folder / "images").mkdir(parents=True)
    (folder / "course.toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
    (folder / "01-feet.md").write_text("\n".join([*FRONT, *body]) + "\n", encoding="utf-8")
    for name, data in {"logo.png": png((800, 200)), **(files or {})}.items():
        (folder / name).write_bytes(data)
    return folder


def images_of(html: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                found.append({name: value or "" for name, value in attrs})

    Images().feed(html)
    return found


def problems(folder: Path) -> list[str]:
    return [str(problem) for problem in check_course(read_course(folder))]


def test_a_course_with_its_images_in_order_checks_and_renders_them(tmp_path: Path) -> None:
    folder = course(
        tmp_path,
        ["Hello.", "", "![A foot from the side](images/foot.png)"],
        files={"images/foot.png": png((2000, 1000))},
    )
    source = read_course(folder)
    assert check_course(source) == []

    rendered = renderer_for_source(source, "https://cdn.test/media").render(
        "feet", SAMPLE_RECIPIENT, LINKS
    )

    logo, foot = images_of(rendered.html)
    # 800 x 200 is stored at 400 x 100 and shown at 200 x 50.
    assert (logo["class"], logo["alt"], logo["width"], logo["height"]) == (
        "logo",
        "Test Physio",
        "200",
        "50",
    )
    assert re.fullmatch(r"https://cdn\.test/media/course/[0-9a-f]{12}-logo\.png", logo["src"])
    assert (foot["alt"], foot["width"], foot["height"]) == ("A foot from the side", "552", "276")
    assert re.fullmatch(r"https://cdn\.test/media/course/[0-9a-f]{12}-foot\.png", foot["src"])
    assert "[image: A foot from the side]" in rendered.text
    assert "images/foot.png" not in rendered.html  # the author's path never goes out


@pytest.mark.parametrize(
    ("line", "src", "said"),
    [
        ("![Gone](images/gone.png)", "images/gone.png", "file not found in the course folder"),
        ("![Out](../secret.png)", "../secret.png", "'..' is not allowed"),
        ("![Out](images/../../secret.png)", "images/../../secret.png", "'..' is not allowed"),
        ("![Root](/etc/hosts)", "/etc/hosts", "relative to the course folder"),
        ("![Web](https://cdn.test/x.png)", "https://cdn.test/x.png", "not from addresses"),
        ("![Web](http://cdn.test/x.png)", "http://cdn.test/x.png", "not from addresses"),
        ("![Any](//cdn.test/x.png)", "//cdn.test/x.png", "not from addresses"),
        ("![Data](data:image/png;base64,iVBOR)", "data:image/png;base64,iVBOR", "addresses"),
        ("![Folder](images)", "images", "not a file"),
    ],
    ids=[
        "missing",
        "dotdot",
        "dotdot-inside",
        "absolute",
        "https",
        "http",
        "schemeless",
        "data",
        "dir",
    ],
)
def test_an_image_that_is_not_a_file_of_the_folder_is_refused_at_its_line(
    tmp_path: Path, line: str, src: str, said: str
) -> None:
    (tmp_path / "secret.png").write_bytes(png())
    folder = course(tmp_path, ["Hello.", "", line])

    (problem,) = problems(folder)

    assert problem.startswith(f"{folder / '01-feet.md'}:8: image {src}: ")
    assert said in problem


def test_a_symlink_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(png())
    folder = course(tmp_path, ["![Linked](images/linked.png)"])
    (folder / "images" / "linked.png").symlink_to(outside)
    (folder / "images" / "inside.png").symlink_to(folder / "logo.png")

    assert problems(folder) == [
        f"{folder / '01-feet.md'}:6: image images/linked.png: leads outside the course folder "
        "(through a symlink)"
    ]
    # A symlink that stays inside the folder is only a file of it.
    (folder / "01-feet.md").write_text("\n".join([*FRONT, "![Logo](images/inside.png)"]) + "\n")
    assert problems(folder) == []


def test_an_image_without_alt_text_is_a_problem(tmp_path: Path) -> None:
    folder = course(
        tmp_path,
        ["Hello.", "", "![](images/foot.png)", "", "![  ](images/foot.png)"],
        files={"images/foot.png": png()},
    )

    assert problems(folder) == [
        f"{folder / '01-feet.md'}:{line}: image images/foot.png has no alt text: write what it "
        "shows, ![like this](images/dead-bug.png), for readers with images off"
        for line in (8, 10)
    ]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG is not shown by email clients"),
        (b"#!/bin/sh\nrm -rf /\n", "not an image Pillow can read"),
    ],
    ids=["svg", "script"],
)
def test_a_file_that_is_not_an_image_by_its_content_is_refused(
    tmp_path: Path, data: bytes, said: str
) -> None:
    folder = course(tmp_path, ["![Foot](images/foot.png)"], files={"images/foot.png": data})

    (problem,) = problems(folder)

    assert problem.startswith(f"{folder / '01-feet.md'}:6: image images/foot.png: {said}")


def test_a_decompression_bomb_in_the_folder_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    bomb = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(bomb, "PNG")  # 900 megapixels in about 100 KB
    folder = course(
        tmp_path, ["![Bomb](images/bomb.png)"], files={"images/bomb.png": bomb.getvalue()}
    )

    (problem,) = problems(folder)

    assert problem.startswith(f"{folder / '01-feet.md'}:6: image images/bomb.png: ")
    assert "decompression bomb" in problem


def test_an_image_over_the_size_limit_after_processing_is_refused(tmp_path: Path) -> None:
    toml = [*COURSE_TOML, "", "[images]", "max_kb = 20"]  # 14-15
    noisy = {"images/noise.png": png((1200, 800), noisy=True)}
    folder = course(tmp_path, ["![Static on a screen](images/noise.png)"], toml, noisy)

    (problem,) = problems(folder)

    assert problem.startswith(f"{folder / '01-feet.md'}:6: image images/noise.png is ")
    assert "KB after processing; the limit is 20 KB ([images] max_kb in course.toml)" in problem


def test_the_size_limit_must_be_sensible(tmp_path: Path) -> None:
    folder = course(tmp_path, ["Hi."], [*COURSE_TOML, "", "[images]", "max_kb = 0"])

    assert problems(folder) == [
        f"{folder / 'course.toml'}:14: images.max_kb must be 1 to 10,000 (KB)"
    ]


def test_logo_and_thumbnails_are_checked_at_their_lines(tmp_path: Path) -> None:
    toml = [
        *COURSE_TOML[:4],
        'logo = "missing-logo.png"',  # 5
        *COURSE_TOML[5:],
        "",  # 13
        "[[related]]",  # 14
        'title = "Shoes"',  # 15
        'url = "https://test.example/shoes"',  # 16
        'thumbnail = "https://test.example/shoe.png"',  # 17
    ]
    body = ["Hi."]
    lesson_related = [
        "[[related]]",  # 5
        'title = "Heels"',  # 6
        'url = "https://test.example/heels"',  # 7
        'thumbnail = "../heel.png"',  # 8
    ]
    folder = course(tmp_path, body, toml)
    (folder / "01-feet.md").write_text(
        "\n".join([*FRONT[:4], *lesson_related, "+++", "Hi."]) + "\n"
    )

    assert problems(folder) == [
        f"{folder / 'course.toml'}:5: image missing-logo.png: file not found in the course folder",
        f"{folder / 'course.toml'}:17: image https://test.example/shoe.png: images come from the "
        "course folder, not from addresses: save the file beside the lessons and write its path "
        "(images/name.png)",
        f"{folder / '01-feet.md'}:8: image ../heel.png: '..' is not allowed: the image must be "
        "inside the course folder",
    ]


def test_brand_may_be_a_name_or_a_table_with_a_name(tmp_path: Path) -> None:
    as_string = ['title = "T"', 'brand = "Plain Brand"', *COURSE_TOML[6:]]
    folder = course(tmp_path, ["Hi."], as_string)
    source = read_course(folder)
    assert source.settings is not None
    assert (source.settings.brand, source.settings.logo) == ("Plain Brand", None)

    (folder / "course.toml").write_text(
        "\n".join(['title = "T"', "[brand]", 'logo = "logo.png"', "shade = 3", *COURSE_TOML[6:]])
    )
    assert [p.message for p in read_course(folder).problems] == [
        "unknown setting 'brand.shade'",
        "missing brand.name (who the course is from)",
    ]


HOSTILE_PARTS = st.sampled_from(
    ["..", ".", "", "images", "logo.png", "secret.png", "/", "\\", "%2e%2e", "~", "C:", "\0", " "]
)


@settings(max_examples=60, deadline=None)
@given(
    src=st.one_of(
        st.lists(HOSTILE_PARTS, min_size=1, max_size=5).map("/".join),
        st.text(min_size=1, max_size=40),
    )
)
def test_no_path_an_author_writes_reads_a_file_outside_the_folder(src: str) -> None:
    """Whatever is written as an image's path, the check ends in problems or in images read from
    the course folder itself: never a crash, never the file beside it."""
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        (root / "secret.png").write_bytes(png((40, 40)))
        folder = course(root, ["Hi.", "", f"![Picture]({src})"])
        source = read_course(folder)

        found = check_course(source)

        media = collect_media(source)
        assert all(file.processed.data for file in media.files.values())
        if not found:
            for picture in media.pictures:
                resolved = (folder / picture.source).resolve()
                assert resolved.is_relative_to(folder.resolve())


def test_the_completion_emails_images_are_checked_and_served_like_a_lessons(
    tmp_path: Path,
) -> None:
    """completion.md is written like a lesson: its images are refused at its lines when missing or
    without alt text, and one used only there is processed and served, never sent as the author's
    relative path (which no mail client can load)."""
    folder = course(tmp_path, ["Hello."], files={"images/medal.png": png((400, 400))})
    (folder / "completion.md").write_text(
        "\n".join(
            [
                "+++",  # 1
                'subject = "Done"',  # 2
                'title = "Well done"',  # 3
                "+++",  # 4
                "![A medal](images/medal.png)",  # 5
                "",  # 6
                "![](images/medal.png)",  # 7
                "",  # 8
                "![Gone](images/gone.png)",  # 9
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    completion = folder / "completion.md"

    found = problems(folder)

    assert f"{completion}:7: image images/medal.png has no alt text" in "\n".join(found)
    assert any(
        p.startswith(f"{completion}:9: image images/gone.png: file not found") for p in found
    )
    (folder / "completion.md").write_text(
        '+++\nsubject = "Done"\ntitle = "Well done"\n+++\n![A medal](images/medal.png)\n'
    )
    source = read_course(folder)
    assert check_course(source) == []
    rendered = renderer_for_source(source, "https://cdn.test/media").render(
        COMPLETION_KEY, SAMPLE_RECIPIENT, LINKS
    )
    _logo, medal = images_of(rendered.html)
    assert re.fullmatch(r"https://cdn\.test/media/course/[0-9a-f]{12}-medal\.png", medal["src"])
    assert (medal["alt"], medal["width"], medal["height"]) == ("A medal", "400", "400")


def test_a_huge_file_is_refused_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video saved as .png (gigabytes) is refused from its size, before a byte is read."""
    folder = course(tmp_path, ["![A run](images/run.png)"])
    with open(folder / "images" / "run.png", "wb") as sparse:
        sparse.truncate(MAX_SOURCE_BYTES + 1)

    def watched(file: Path, *args: Any, **kwargs: Any) -> Any:
        assert Path(file).name != "run.png", "the huge file was opened"
        return open(file, *args, **kwargs)

    monkeypatch.setattr(course_media, "open", watched, raising=False)

    assert problems(folder) == [
        f"{folder / '01-feet.md'}:6: image images/run.png: the file is over 30 MB"
    ]
