"""One image of a course folder, processed once for email: bytes in, bytes out (Pillow).

What comes out, whatever went in:

- only PNG, JPEG, GIF and WebP are read, told by their content, never by the file's name; SVG and
  everything else is refused (email clients do not show SVG);
- the orientation its EXIF says is applied to the pixels, then every piece of metadata is left
  behind (EXIF with its GPS position, XMP, comments, ICC profiles): a phone photo must not tell
  subscribers where it was taken;
- it is scaled down to fit twice its display box (`domain/media.py`), never up;
- a PNG stays a PNG (optimised), a JPEG a JPEG (quality 82, progressive: it shows while it
  loads); a GIF becomes a PNG of its first frame, a WebP a PNG if it has transparency, else a
  JPEG (Outlook for Windows shows no WebP);
- its name is `<hash12>-<safe name>`: the first 12 hex digits of the SHA-256 of the bytes out,
  so a changed image gets a new name and an email already sent keeps the old one.

A decompression bomb (a small file of huge pixel dimensions) is refused from its header, before
its pixels are decoded. Every refusal is an `ImageRefused` with a message for the author.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image, ImageOps, UnidentifiedImageError

from dripcourse.domain.media import Use, stored_size

READABLE = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
MAX_PIXELS = 40_000_000
"""Pixels an image may have before it is decoded: a 40-megapixel camera's, well below the
billions a decompression bomb asks for (Pillow's own guard warns from 89 million)."""
MAX_SOURCE_BYTES = 30 * 1024 * 1024
"""An image file larger than this is not read at all."""
JPEG_QUALITY = 82
_UNSAFE = re.compile(r"[^a-z0-9]+")


class ImageRefused(ValueError):
    """An image that cannot be used, with the reason said for the author."""


@dataclass(frozen=True, slots=True)
class Processed:
    """An image ready to be served."""

    name: str
    data: bytes
    content_type: str
    width: int
    height: int
    """In pixels, as stored."""


def process(data: bytes, file_name: str, use: Use) -> Processed:
    """`data` (the file `file_name` of the course folder) made ready for `use`; `ImageRefused`
    says why it cannot be. The same bytes in give the same bytes out."""
    # Kept by the hash of the bytes in (not the bytes: a photo may be megabytes): `courses
    # check`, the preview and `courses sync` ask for the same images again and again.
    key = (hashlib.sha256(data).hexdigest(), PurePosixPath(file_name).name, use)
    with _LOCK:
        if key in _DONE:
            _DONE.move_to_end(key)
            return _DONE[key]
    done = _process(data, key[1], use)
    with _LOCK:
        _DONE[key] = done
        while len(_DONE) > CACHE_SIZE:
            _DONE.popitem(last=False)
    return done


CACHE_SIZE = 128
_DONE: OrderedDict[tuple[str, str, Use], Processed] = OrderedDict()
_LOCK = threading.Lock()


def _process(data: bytes, file_name: str, use: Use) -> Processed:
    if len(data) > MAX_SOURCE_BYTES:
        raise ImageRefused(f"the file is over {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
    if _looks_like_svg(data):
        raise ImageRefused("SVG is not shown by email clients; use a PNG, JPEG, GIF or WebP")
    try:
        with warnings.catch_warnings():
            # Pillow warns of a likely bomb from 89 megapixels and raises from twice that.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                image_format = opened.format or ""
                if image_format == "MPO":
                    # A camera's JPEG with a depth map or preview appended (Multi-Picture
                    # Format): a JPEG photo, whose first picture is the one shown.
                    image_format = "JPEG"
                if image_format not in READABLE:
                    raise ImageRefused(
                        f"a {image_format or 'file of unknown kind'}, not a PNG, JPEG, GIF or "
                        "WebP image"
                    )
                if opened.width * opened.height > MAX_PIXELS:
                    raise ImageRefused(
                        f"{opened.width} x {opened.height} pixels is more than "
                        f"{MAX_PIXELS:,} (a decompression bomb?)"
                    )
                opened.seek(0)  # an animation's first frame
                image = ImageOps.exif_transpose(opened)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRefused("not an image Pillow can read (PNG, JPEG, GIF or WebP)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, ImageRefused):
            raise
        raise ImageRefused(f"cannot be read as an image: {exc}") from None
    size = stored_size(image.width, image.height, use)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    out, content_type, suffix = _encode(image, image_format)
    digest = hashlib.sha256(out).hexdigest()[:12]
    return Processed(
        name=f"{digest}-{safe_stem(file_name)}{suffix}",
        data=out,
        content_type=content_type,
        width=image.width,
        height=image.height,
    )


def _encode(image: Image.Image, image_format: str) -> tuple[bytes, str, str]:
    """The pixels alone, in the format said in the module's docstring. Encoders read some
    metadata from `image.info` (the PNG one its ICC profile): only transparency is left there."""
    buffer = io.BytesIO()
    photo = image_format == "JPEG" or (image_format == "WEBP" and not _has_alpha(image))
    if photo:
        clean = image.convert("RGB")
        clean.info = {}
        clean.save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
        return buffer.getvalue(), "image/jpeg", ".jpg"
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        clean = image.copy()
    else:  # CMYK, 16-bit and the like: what a PNG in a mail client is sure to show
        clean = image.convert("RGBA" if _has_alpha(image) else "RGB")
    clean.info = {k: v for k, v in image.info.items() if k == "transparency"}
    clean.save(buffer, "PNG", optimize=True)
    return buffer.getvalue(), "image/png", ".png"


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<svg", b"<?xml")) or b"<svg" in head


def safe_stem(file_name: str) -> str:
    """The file's name without its extension, as lower-case letters, digits and '-' (at most 60):
    safe in a URL, a file system and an HTML attribute."""
    stem = _UNSAFE.sub("-", PurePosixPath(file_name).stem.lower()).strip("-")[:60].strip("-")
    return stem or "image"
