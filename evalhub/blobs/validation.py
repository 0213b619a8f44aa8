"""Decide whether a byte string is an image EvalHub accepts, before anything is stored."""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"}
EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
FORMAT_EXTENSION = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif",
                    "GIF": "gif"}


class InvalidImage(ValueError):
    """The bytes are not an acceptable image; the message says why, naming the file."""


#: EXIF orientations that turn the picture a quarter turn (transposed, 90 or 270 degrees,
#: transverse): shown, the stored width is the height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    """What an accepted image is. ``width`` and ``height`` are the picture as shown (pixels):
    EXIF orientation applied, as in every derivative, preview and tile annotators receive
    (display.py), so a phone photo stored landscape with orientation 6 is portrait here."""

    sha256: str
    format: str
    width: int
    height: int
    mode: str
    size_bytes: int

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSION[self.format]



# First bytes of the accepted formats: a file that starts like one but that Pillow cannot
# identify is damaged or cut short, not "not an image".
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def _signature(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for magic, fmt in _SIGNATURES if data.startswith(magic)), None)


def _bomb(name: str, width: int, height: int, max_pixels: int) -> InvalidImage:
    side = math.isqrt(max_pixels)
    square = f", {side} x {side}" if side * side == max_pixels else ""
    return InvalidImage(
        f"{name}: {width} x {height} = {width * height:,} pixels exceeds the limit of "
        f"{max_pixels:,} pixels{square} (EVALHUB_MAX_IMAGE_PIXELS); refused as a possible "
        "decompression bomb")


def _header_size(data: bytes) -> tuple[int, int] | None:
    """The size a file's header claims, read by the format plugins themselves: ``Image.open``
    refuses a huge header (Pillow's own bomb guard) before telling anyone the size."""
    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            return factory(io.BytesIO(data)).size
        except Exception:  # not this format: try the next plugin
            continue
    return None


def inspect_image(data: bytes, *, name: str, max_pixels: int, max_bytes: int) -> ImageInfo:
    """Fully decode ``data`` and describe it, or raise :class:`InvalidImage`.

    Decoding everything (not only the header) is what catches truncated files. The pixel
    limit is checked from the header *before* decoding, so a decompression bomb is refused
    without allocating its pixels; the refusal names the dimensions and the limit (whether our
    check or Pillow's own guard, ``Image.MAX_IMAGE_PIXELS``, saw it first).
    """
    if not data:
        raise InvalidImage(f"{name}: file is empty")
    if len(data) > max_bytes:
        raise InvalidImage(f"{name}: {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                width, height = img.size
                if width * height > max_pixels:
                    raise _bomb(name, width, height, max_pixels)
                if fmt not in ACCEPTED_FORMATS:
                    raise InvalidImage(f"{name}: format {fmt or 'unknown'} is not accepted")
                mode = img.mode
                if mode == "F":
                    # No display scale is right for floats (0-1? 0-255? HDR?): shown as 8-bit
                    # pixels they came out black, so the annotator would judge a black square.
                    raise InvalidImage(f"{name}: 32-bit floating-point pixels cannot be shown "
                                       "as they are; save it with 8 or 16 bits per channel")
                img.load()
                if img.getexif().get(ExifTags.Base.Orientation, 1) in _QUARTER_TURNS:
                    width, height = height, width
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = _header_size(data)
        if size is not None:
            raise _bomb(name, *size, max_pixels) from exc
        raise InvalidImage(f"{name}: refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        started_as = _signature(data)
        if started_as is not None:  # a TIFF keeps its directory at the end, say: cut short
            raise InvalidImage(f"{name}: truncated or damaged {started_as} file (it starts "
                               "like one, but cannot be read)") from exc
        raise InvalidImage(f"{name}: not an image (cannot identify the format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{name}: unreadable or truncated image ({exc})") from exc
    if width == 0 or height == 0:
        raise InvalidImage(f"{name}: image has zero width or height")
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        width=width,
        height=height,
        mode=mode,
        size_bytes=len(data),
    )
