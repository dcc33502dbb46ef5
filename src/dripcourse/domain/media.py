"""A course's images as the emails show them: where each is used, and at what size it is displayed.

An image of the course folder is used in one of three places, each with its own display box in CSS
pixels: a lesson's Markdown image fills the content column of the built-in layout (600 px less
24 px of padding each side), the logo sits in the header, a thumbnail beside a related article.
`courses/images.py` stores twice the box (for sharp images on high-density screens), never more
than the original; the HTML asks for the display size, so a phone scales it down.

A `Picture` ties one file of the folder, in one use, to the processed file that stands for it
(`media_files.name`) at its display size. A course's pictures are kept with its settings
(`CourseSettings.media`), so that rendering needs no query and no image processing. Pure data and
arithmetic, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Use(StrEnum):
    CONTENT = "content"
    """A Markdown image in a lesson body."""
    LOGO = "logo"
    """`[brand] logo`, in the header of every lesson."""
    THUMBNAIL = "thumbnail"
    """`thumbnail` of a `[[related]]` article."""


CONTENT_WIDTH = 552
"""The content column of the built-in layout: `.container` 600 px less `.content`'s 2 x 24 px."""
BOXES: dict[Use, tuple[int, int]] = {
    Use.CONTENT: (CONTENT_WIDTH, 4 * CONTENT_WIDTH),
    Use.LOGO: (200, 60),
    Use.THUMBNAIL: (120, 120),
}
"""The largest display size (width, height in CSS px) of each use; an image keeps its proportions
inside it. A lesson image may be tall, but not a poster: four column widths at most."""
DENSITY = 2
"""Stored pixels per displayed pixel at most: sharp on high-density (retina) screens."""


def stored_size(width: int, height: int, use: Use) -> tuple[int, int]:
    """The pixel size an image of `width` x `height` is stored at: inside DENSITY times its box,
    proportions kept, never enlarged."""
    box_w, box_h = BOXES[use]
    return _fit(width, height, DENSITY * box_w, DENSITY * box_h)


def display_size(width: int, height: int, use: Use) -> tuple[int, int]:
    """The size (CSS px) a stored image of `width` x `height` pixels is shown at: inside its box,
    never larger than its pixels (a small image is not blown up)."""
    box_w, box_h = BOXES[use]
    return _fit(width, height, box_w, box_h)


def _fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(1.0, box_w / width, box_h / height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True, slots=True)
class Picture:
    """One file of the course folder, in one use: the processed file served for it."""

    use: Use
    source: str
    """The path as the course writes it, relative to the course folder (`images/dead-bug.png`)."""
    name: str
    """As served: `<hash12>-<name>` (`media_files.name`)."""
    width: int
    height: int
    """The display size, CSS px: what `width` and `height` of the <img> say."""

    def to_json(self) -> dict[str, Any]:
        return {
            "use": str(self.use),
            "source": self.source,
            "name": self.name,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Picture:
        return cls(
            Use(data["use"]), data["source"], data["name"], int(data["width"]), int(data["height"])
        )


def find(pictures: tuple[Picture, ...], use: Use, source: str | None) -> Picture | None:
    """The picture of `source` in `use`; None when the course has none (or `source` is None)."""
    if not source:
        return None
    return next((p for p in pictures if p.use == use and p.source == source), None)


def merged(older: tuple[Picture, ...], newer: tuple[Picture, ...]) -> tuple[Picture, ...]:
    """`newer`, and each picture of `older` whose file and use `newer` does not have: a lesson
    retired with its image still renders for whoever is still owed it."""
    kept = {(p.use, p.source) for p in newer}
    return tuple(p for p in older if (p.use, p.source) not in kept) + newer
