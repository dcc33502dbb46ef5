"""Processing one image for email (courses/images.py): sizes, formats, metadata, names, and the
files a stranger could slip into a course folder (not an image, SVG, a decompression bomb)."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from dripcourse.courses.images import ImageRefused, process, safe_stem
from dripcourse.domain.media import BOXES, Use, display_size, stored_size


def picture(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB", **save: object) -> bytes:
    image = Image.new(mode, size, "white" if mode != "RGBA" else (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_lesson_image_is_stored_at_twice_the_column_and_shown_at_the_column() -> None:
    done = process(picture((3000, 1500)), "images/wide.png", Use.CONTENT)

    assert (done.width, done.height) == (1104, 552)
    assert opened(done.data).size == (1104, 552)
    assert display_size(done.width, done.height, Use.CONTENT) == (552, 276)


def test_a_small_image_is_never_enlarged() -> None:
    done = process(picture((300, 200)), "small.png", Use.CONTENT)

    assert (done.width, done.height) == (300, 200)
    assert display_size(300, 200, Use.CONTENT) == (300, 200)


def test_logo_and_thumbnail_fit_their_own_boxes() -> None:
    logo = process(picture((1600, 400)), "logo.png", Use.LOGO)
    thumbnail = process(picture((1000, 1000)), "t.png", Use.THUMBNAIL)

    assert (logo.width, logo.height) == (400, 100)
    assert display_size(logo.width, logo.height, Use.LOGO) == (200, 50)
    assert (thumbnail.width, thumbnail.height) == (240, 240)
    assert display_size(240, 240, Use.THUMBNAIL) == (120, 120)


@given(
    width=st.integers(1, 20_000),
    height=st.integers(1, 20_000),
    use=st.sampled_from(list(Use)),
)
def test_sizes_stay_in_their_box_and_never_grow(width: int, height: int, use: Use) -> None:
    box_w, box_h = BOXES[use]
    stored = stored_size(width, height, use)
    shown = display_size(*stored, use)

    assert stored[0] <= min(width, 2 * box_w) and stored[1] <= min(height, 2 * box_h)
    assert shown[0] <= min(stored[0], box_w) and shown[1] <= min(stored[1], box_h)
    assert min(stored) >= 1 and min(shown) >= 1


def test_the_name_is_the_hash_of_the_bytes_out_and_a_safe_name() -> None:
    data = picture((400, 300))

    first = process(data, "images/Dead Bug (start).PNG", Use.CONTENT)
    again = process(data, "images/Dead Bug (start).PNG", Use.CONTENT)
    other = process(picture((401, 300)), "images/Dead Bug (start).PNG", Use.CONTENT)

    assert re.fullmatch(r"[0-9a-f]{12}-dead-bug-start\.png", first.name)
    assert again == first  # the same bytes in, the same bytes and name out
    assert other.name != first.name
    import hashlib

    assert first.name.startswith(hashlib.sha256(first.data).hexdigest()[:12])
    assert safe_stem("../../<script>.png") == "script"
    assert safe_stem("....png") == "image"


def test_a_photo_loses_its_exif_and_gps_but_keeps_its_orientation() -> None:
    image = Image.new("RGB", (600, 300), "red")  # wide as stored...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...but the camera was turned: show it rotated 90 degrees (tall)
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (43.0, 39.0, 0.0), "W", (79.0, 23.0, 0.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, comment=b"taken at home")
    original = buffer.getvalue()
    assert opened(original).getexif().get_ifd(0x8825)  # the GPS position is in the file

    done = process(original, "photo.jpeg", Use.CONTENT)
    out = opened(done.data)

    assert done.content_type == "image/jpeg" and done.name.endswith("-photo.jpg")
    assert out.size == (300, 600)  # turned upright
    assert not out.getexif()  # no EXIF at all, so no GPS and no orientation left to apply twice
    assert b"Exif" not in done.data and b"PhoneMaker" not in done.data
    assert b"taken at home" not in done.data
    assert out.info.get("progressive") or out.info.get("progression")


def test_a_png_stays_png_without_its_text_chunks_or_profile() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone@example.com")
    image = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info, icc_profile=b"\0" * 200)

    done = process(buffer.getvalue(), "logo.png", Use.LOGO)

    assert done.content_type == "image/png"
    assert b"someone@example.com" not in done.data
    assert b"iCCP" not in done.data and b"tEXt" not in done.data
    assert opened(done.data).mode == "RGBA"  # transparency kept: it is not metadata


def test_gif_becomes_png_and_webp_becomes_jpeg_or_png() -> None:
    gif = process(picture((64, 64), "GIF", "P"), "anim.gif", Use.CONTENT)
    photo = process(picture((64, 64), "WEBP"), "photo.webp", Use.CONTENT)
    clear = process(picture((64, 64), "WEBP", "RGBA", lossless=True), "clear.webp", Use.CONTENT)

    assert (gif.content_type, gif.name[-4:]) == ("image/png", ".png")
    assert (photo.content_type, photo.name[-4:]) == ("image/jpeg", ".jpg")
    assert (clear.content_type, clear.name[-4:]) == ("image/png", ".png")


def test_a_camera_jpeg_with_a_second_picture_is_a_jpeg() -> None:
    """Phones and cameras write JPEGs with a depth map or preview appended (Multi-Picture Format,
    which Pillow calls MPO): they are JPEG photos, and the first picture is the one shown."""
    first, second = Image.new("RGB", (300, 200), "red"), Image.new("RGB", (300, 200), "blue")
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    assert opened(buffer.getvalue()).format == "MPO"

    done = process(buffer.getvalue(), "images/phone-photo.jpg", Use.CONTENT)

    assert (done.content_type, done.name[-4:]) == ("image/jpeg", ".jpg")
    assert opened(done.data).convert("RGB").getpixel((150, 100))[0] > 200  # red: the first


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='4'/></svg>", "SVG"),
        (b'<?xml version="1.0"?>\n<svg/>', "SVG"),
        (b"just some text, saved as .png", "not an image"),
        (b"", "not an image"),
        (picture((20, 20), "BMP"), "not a PNG, JPEG, GIF or WebP"),
        (picture((20, 20), "TIFF"), "not a PNG, JPEG, GIF or WebP"),
        (picture((200, 200))[:60], "cannot be read"),
    ],
    ids=["svg", "svg-xml", "text", "empty", "bmp", "tiff", "truncated"],
)
def test_what_is_not_a_png_jpeg_gif_or_webp_by_content_is_refused(data: bytes, said: str) -> None:
    with pytest.raises(ImageRefused, match=said):
        process(data, "looks-like.png", Use.CONTENT)


@pytest.mark.parametrize("size", [(8_000, 6_000), (20_000, 20_000)], ids=["48mp", "400mp"])
def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded(
    size: tuple[int, int],
) -> None:
    bomb = picture(size, "PNG", "1")  # one bit a pixel, all alike: a tiny file
    assert len(bomb) < 200_000

    with pytest.raises(ImageRefused, match="decompression bomb"):
        process(bomb, "innocent.png", Use.CONTENT)
