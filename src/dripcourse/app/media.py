"""The courses' processed images, for those who serve them: one image by its URL (`web/media.py`),
and all of them written to a folder for a CDN (`dripcourse media export`).

Rows of `media_files` are only ever added (`courses/catalog.sync_course`): an export holds every
version any email was sent with, and a file of a given name never changes, so an export into a
folder that has one keeps it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.courses.files import SLUG
from dripcourse.errors import BadInput, NotFound
from dripcourse.store.models import Course, MediaFile

SERVED_NAME = re.compile(r"^[0-9a-f]{12}-[a-z0-9-]{1,60}\.(?:png|jpg)$")
"""What `courses/images.py` names a processed image: anything else is no image of ours."""


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    content_type: str


def image(session: Session, course: str, name: str) -> Image:
    """The image served as `<media root>/<course>/<name>`; `NotFound` for any other name."""
    found = None
    if SLUG.fullmatch(course) and SERVED_NAME.fullmatch(name):
        found = session.execute(
            select(MediaFile.data, MediaFile.content_type)
            .join(Course)
            .where(Course.slug == course, MediaFile.name == name)
        ).one_or_none()
    if found is None:
        raise NotFound("there is no such image")
    return Image(found.data, found.content_type)


@dataclass(frozen=True, slots=True)
class Exported:
    folder: Path
    written: int
    kept: int
    """Files the folder had already (same name, same bytes)."""


def export(session: Session, folder: Path, course: str | None = None) -> Exported:
    """Every image (of `course`, or of all courses) written to `folder` as `<course>/<name>`, the
    layout of `DRIPCOURSE_MEDIA_URL`. Written in a folder of their own beside `folder` first and
    moved into place at the end, so that a failure leaves no half-written file behind."""
    query = select(Course.slug, MediaFile.name, MediaFile.data).join(Course)
    if course is not None:
        if not session.scalar(select(Course.id).where(Course.slug == course)):
            raise NotFound(f"unknown course {course!r} (run `dripcourse courses sync`)")
        query = query.where(Course.slug == course)
    rows = [
        (r[0], r[1], r[2]) for r in session.execute(query.order_by(Course.slug, MediaFile.name))
    ]
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} is a file, not a folder")
    if not folder.parent.is_dir():
        raise BadInput(f"no folder {folder.parent} to export into")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".dripcourse-media-", dir=folder.parent))
    except OSError as exc:
        raise BadInput(f"cannot write in {folder.parent}: {exc.strerror}") from None
    try:
        written, kept = _write(rows, staging, folder)
    except OSError as exc:
        raise BadInput(f"cannot export the images to {folder}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Exported(folder, written, kept)


def _write(rows: list[tuple[str, str, bytes]], staging: Path, folder: Path) -> tuple[int, int]:
    new = [(slug, name, data) for slug, name, data in rows if _new(folder / slug / name, data)]
    for slug, name, data in new:
        # Names were checked when made; checked again, as a path is built from them here.
        if not (SLUG.fullmatch(slug) and SERVED_NAME.fullmatch(name)):
            raise BadInput(f"refusing to write an image named {slug}/{name!r}")
        (staging / slug).mkdir(exist_ok=True)
        (staging / slug / name).write_bytes(data)
    if not folder.exists():
        staging.chmod(0o755)  # made private by mkdtemp; the folder is for uploading
        staging.rename(folder)
    else:
        for slug, name, _data in new:
            (folder / slug).mkdir(exist_ok=True)
            (staging / slug / name).replace(folder / slug / name)
    return len(new), len(rows) - len(new)


def _new(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() != data
    except FileNotFoundError:
        return True
