"""Deep Zoom (DZI) pyramids for very large images, so the rating page never loads a 16K file.

A pyramid lives in the default storage under ``tiles/<sha256>/``::

    tiles/<sha>/image.dzi                      the descriptor, written LAST
    tiles/<sha>/image_files/<level>/<col>_<row>.<jpeg|webp>

The descriptor doubles as the "complete" marker: a reader that finds it can trust every tile,
and a build that died half-way leaves no descriptor, so the next build wipes and redoes it.
Builds of one blob are serialised with a file lock (per host), which makes concurrent first
requests wait for one build instead of writing the same tiles twice.

These storage names hold the content hash, so they never reach a browser: the page asks for
``/rate/tiles/<display token>...`` (names.py) and the view streams the tile, or hands nginx its
internal path (``X-Accel-Redirect``); it never redirects to the storage. Tiles are cut from
the display pixels (display.py), so they carry no metadata of the original.

Levels follow the DZI spec: level ``L`` of ``max_level = ceil(log2(max(w, h)))`` has size
``ceil(w / 2**(max_level - L)) x ceil(h / 2**(max_level - L))``; level 0 is 1x1.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from evalhub.blobs.display import display_pixels
from evalhub.blobs.locks import blob_lock
from evalhub.blobs.models import ImageBlob

# Above this long side an image gets a pyramid, and the rating page opens the pyramid instead
# of the file (evalhub.campaigns.serving.payloads asks needs_tiles).
TILE_MIN_SIDE_PX = 4096
# 510 + 2 x 1 overlap = 512-pixel tiles: few files per level, and power-of-two textures.
TILE_SIZE = 510
TILE_OVERLAP = 1
JPEG_QUALITY = 88
WEBP_QUALITY = 88
DZI_NS = "http://schemas.microsoft.com/deepzoom/2008"


@dataclass(frozen=True)
class Pyramid:
    """The geometry of one DZI pyramid; pure arithmetic, no I/O."""

    width: int
    height: int
    tile_size: int = TILE_SIZE
    overlap: int = TILE_OVERLAP

    @property
    def max_level(self) -> int:
        return math.ceil(math.log2(max(self.width, self.height, 1)))

    def level_size(self, level: int) -> tuple[int, int]:
        scale = 2 ** (self.max_level - level)
        return math.ceil(self.width / scale), math.ceil(self.height / scale)

    def grid(self, level: int) -> tuple[int, int]:
        """Columns and rows of tiles at ``level``."""
        width, height = self.level_size(level)
        return math.ceil(width / self.tile_size), math.ceil(height / self.tile_size)

    def tile_box(self, level: int, col: int, row: int) -> tuple[int, int, int, int]:
        """Pixel box (left, top, right, bottom) of a tile, overlap included, inside the level."""
        width, height = self.level_size(level)
        size, lap = self.tile_size, self.overlap
        left = col * size - (lap if col > 0 else 0)
        top = row * size - (lap if row > 0 else 0)
        return left, top, min(width, (col + 1) * size + lap), min(height, (row + 1) * size + lap)


def needs_tiles(blob: ImageBlob) -> bool:
    return max(blob.width, blob.height) > TILE_MIN_SIDE_PX


def tile_format(mode: str) -> str:
    """JPEG is smallest and fastest; only images with transparency need WebP."""
    return "webp" if mode in ("RGBA", "LA", "PA") or mode.endswith("A") else "jpeg"


def base_path(sha256: str) -> str:
    return f"tiles/{sha256}"


def dzi_path(sha256: str) -> str:
    return f"{base_path(sha256)}/image.dzi"


def tile_path(sha256: str, level: int, col: int, row: int, ext: str) -> str:
    return f"{base_path(sha256)}/image_files/{level}/{col}_{row}.{ext}"


def pyramid_ready(sha256: str) -> bool:
    return default_storage.exists(dzi_path(sha256))


def dzi_xml(pyramid: Pyramid, fmt: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="{DZI_NS}" Format="{fmt}" Overlap="{pyramid.overlap}" '
        f'TileSize="{pyramid.tile_size}">'
        f'<Size Width="{pyramid.width}" Height="{pyramid.height}"/></Image>\n'
    )


def _normalised(img: Image.Image) -> Image.Image:
    """8-bit RGB/RGBA/L as the browser would show it, with no metadata: the display
    derivative's pixels (display.py: EXIF orientation applied, ICC converted to sRGB, a fresh
    image), so no tile can carry the original's comment, EXIF, XMP or profile."""
    img = display_pixels(img)
    if img.mode not in ("RGB", "RGBA", "L"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")  # LA, 1
    return img


def _encode(tile: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        tile.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    else:
        tile.save(out, format="WEBP", quality=WEBP_QUALITY, method=2)
    return out.getvalue()


def _put(path: str, data: bytes) -> None:
    """Write ``path`` exactly; storages rename on collision, so a stray duplicate is removed."""
    saved = default_storage.save(path, ContentFile(data))
    if saved != path:
        default_storage.delete(saved)


def _delete_tree(path: str) -> None:
    """Remove what a crashed build left (storages have no rmtree)."""
    if not default_storage.exists(path):
        return
    dirs, files = default_storage.listdir(path)
    for name in files:
        default_storage.delete(f"{path}/{name}")
    for name in dirs:
        _delete_tree(f"{path}/{name}")


def _levels(img: Image.Image, pyramid: Pyramid) -> Iterator[tuple[int, Image.Image]]:
    """Every level from the largest down; each halves the previous one (``reduce`` rounds up,
    exactly like the DZI formula), which is much faster than resampling the original."""
    current = img
    for level in range(pyramid.max_level, -1, -1):
        if current.size != pyramid.level_size(level):
            current = current.resize(pyramid.level_size(level), Image.Resampling.BOX)
        yield level, current
        if level > 0:
            current = current.reduce(2)


def _write_pyramid(blob: ImageBlob) -> Pyramid:
    with default_storage.open(blob.file.name, "rb") as handle, Image.open(handle) as opened:
        img = _normalised(opened)
        img.load()
    pyramid = Pyramid(*img.size)
    fmt = tile_format(img.mode)
    for level, image in _levels(img, pyramid):
        cols, rows = pyramid.grid(level)
        for col in range(cols):
            for row in range(rows):
                tile = image.crop(pyramid.tile_box(level, col, row))
                _put(tile_path(blob.sha256, level, col, row, fmt), _encode(tile, fmt))
    _put(dzi_path(blob.sha256), dzi_xml(pyramid, fmt).encode())
    return pyramid


def blob_build_tiles(blob: ImageBlob) -> bool:
    """Build the blob's pyramid unless it exists. Returns whether one was built.

    Idempotent and safe to call concurrently (from the page's first request and a worker):
    the second caller waits on the lock, then finds the descriptor and returns.
    """
    if pyramid_ready(blob.sha256):
        return False
    with blob_lock("tiles", blob.sha256):
        if pyramid_ready(blob.sha256):
            return False
        _delete_tree(base_path(blob.sha256))
        _write_pyramid(blob)
    return True
