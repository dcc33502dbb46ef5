"""Images at `courses sync` and after (courses/catalog.py, app/media.py): stored once, never
replaced nor deleted, a changed image stored beside the old one, and `dripcourse media export`
writing them for a CDN. A real SQLite file, and PostgreSQL when its URL is given."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from dripcourse.courses.catalog import get_course, load_sources, sync_course
from dripcourse.domain.media import Use, find
from dripcourse.mail.builder import CourseView
from dripcourse.mail.rendering import Links, Recipient
from dripcourse.store.models import MediaFile

pytestmark = pytest.mark.both_databases

SHIPPED = {"logo.png", "knee-to-wall.png", "heel-raise.png", "dead-bug.png", "thumb-shoe.png"}
READER = Recipient("ada@example.com", "Ada", "Europe/London")
LINKS = Links("https://courses.example.org/u/x", "https://courses.example.org/v/x")


def stored(database) -> list[tuple[str, str, str]]:
    with database.read() as session:
        rows = session.execute(select(MediaFile.source, MediaFile.name, MediaFile.content_type))
        return sorted((r.source, r.name, r.content_type) for r in rows)


def sync(database, courses_dir: Path, clock) -> str:
    with database.transaction() as session:
        (report,) = [sync_course(session, s, clock.now()) for s in load_sources(courses_dir)]
    return f"{report.images_added} image(s) added"


def test_sync_stores_each_processed_image_once_and_a_second_sync_adds_nothing(
    database, courses_dir, clock
) -> None:
    assert sync(database, courses_dir, clock) == "6 image(s) added"
    first = stored(database)
    # dead-bug.png is used twice: in lesson 6's body and, smaller, as a related article's
    # thumbnail.
    assert {Path(source).name for source, _, _ in first} == SHIPPED
    assert len(first) == 6

    assert sync(database, courses_dir, clock) == "0 image(s) added"
    assert stored(database) == first


def test_a_changed_image_gets_a_new_name_and_the_old_one_stays_served(
    database, courses_dir, clock, cli
) -> None:
    sync(database, courses_dir, clock)
    before = {name for source, name, _ in stored(database) if source == "images/dead-bug.png"}
    image = Image.open(courses_dir / "runners/images/dead-bug.png").convert("RGB")
    ImageDraw.Draw(image).rectangle((0, 0, 40, 40), fill="red")
    image.save(courses_dir / "runners/images/dead-bug.png")

    assert sync(database, courses_dir, clock) == "2 image(s) added"  # the lesson's, the thumbnail
    after = {name for source, name, _ in stored(database) if source == "images/dead-bug.png"}
    assert before < after and len(after) == 4
    with database.read() as session:
        course = get_course(session, "runners")
        current = find(course.settings.media, Use.CONTENT, "images/dead-bug.png")
        assert current is not None and current.name in after - before
        html = CourseView.of(course, "https://m.example").renderer.render(
            "lower-back", READER, LINKS
        )
    assert f"https://m.example/runners/{current.name}" in html.html
    # An email sent last week still finds its picture.
    assert cli("media", "export", str(courses_dir.parent / "cdn")).code == 0
    for name in before | after:
        assert (courses_dir.parent / "cdn" / "runners" / name).is_file()


def test_a_retired_lessons_image_still_renders_for_who_is_owed_it(
    database, courses_dir, clock
) -> None:
    sync(database, courses_dir, clock)
    (courses_dir / "runners/06-lower-back.md").unlink()
    (courses_dir / "runners/images/dead-bug.png").unlink()

    sync(database, courses_dir, clock)

    with database.read() as session:
        course = get_course(session, "runners")
        picture = find(course.settings.media, Use.CONTENT, "images/dead-bug.png")
        html = CourseView.of(course, "https://m.example").renderer.render(
            "lower-back", READER, LINKS
        )
    assert picture is not None
    assert f'src="https://m.example/runners/{picture.name}"' in html.html


def test_media_export_writes_the_cdn_layout_and_keeps_what_is_there(
    synced, courses_dir, cli, tmp_path
) -> None:
    target = tmp_path / "upload"

    first = cli("media", "export", str(target))
    again = cli("media", "export", str(target))

    assert (first.code, first.out) == (0, f"6 image(s) written to {target}, 0 already there\n")
    assert (again.code, again.out) == (0, f"0 image(s) written to {target}, 6 already there\n")
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert len(files) == 6 and all(f.startswith("runners/") for f in files)
    with synced.read() as session:
        for _source, name, data in session.execute(
            select(MediaFile.source, MediaFile.name, MediaFile.data)
        ):
            assert (target / "runners" / name).read_bytes() == data
            assert Image.open(io.BytesIO(data)).format in ("PNG", "JPEG")
    # Nothing of the work is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".dripcourse")) == []


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("a-file", "is a file, not a folder"),
        ("missing/deeper/upload", "no folder"),
    ],
)
def test_media_export_refuses_a_bad_folder_in_one_line_and_writes_nothing(
    synced, cli, tmp_path, target: str, said: str
) -> None:
    (tmp_path / "a-file").write_text("keep me")
    before = sorted(p.name for p in tmp_path.iterdir())

    result = cli("media", "export", str(tmp_path / target))

    assert result.code == 2
    assert result.err.count("\n") == 1 and said in result.err
    assert "Traceback" not in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_media_export_of_an_unknown_course_is_refused(synced, cli, tmp_path) -> None:
    result = cli("media", "export", str(tmp_path / "out"), "--course", "walkers")

    assert result.code == 2 and "unknown course 'walkers'" in result.err
    assert not (tmp_path / "out").exists()
