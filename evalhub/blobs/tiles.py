"""Deep Zoom (DZI) pyramids for very large images, so the rating page never loads a 16K file.

A pyramid lives in the default storage under ``tiles/<sha256>/``::

    tiles/<sha>/image.dzi                      the descriptor, written LAST
    tiles/<sha>/image_files/<level>/<col>_<row>.<jpeg|webp>
    tiles/<sha>/image_files/<level>/whole.<jpeg|webp>   small levels as one picture (below)

Who builds: only workers (the ``evalhub.blobs.build_tiles`` task on the ``default`` queue,
queued after every import or generation by after_store.py). The web process never builds: the
tile view answers "preparing" and queues the build (:func:`tiles_ready_or_requested`), and a
campaign with large images is served only once their pyramids exist
(campaigns/building/images.py).

Complete, idempotent, one build at a time: ``ImageBlob.tiles_built_at`` and
``tiles_format`` are set together after the descriptor, and the recorded format is what
readers trust (:func:`pyramid_built`, :func:`built_q`: the one test of a usable pyramid). A
pyramid with ``tiles_built_at`` but no format was built by a worker of the release before
formats were recorded (still running during a deploy, after migration blobs 0007): its format
followed the file's mode, so it counts as not built and the usual path builds it again. A
build first claims the blob
(``tiles_claimed_until``, a conditional UPDATE, so it holds across hosts and on SQLite), wipes
whatever an earlier crashed build left, writes every tile, the descriptor, and records the
pyramid. A second build of the same blob finds the claim and waits its turn (the task retries);
a crashed build's claim runs out after ``CLAIM_SECONDS``, far longer than a build takes, and the
next build starts over. Tiles are deterministic, so a late writer can only rewrite equal bytes.

Memory: Pillow decodes the image once (no codec decodes a PNG or JPEG strip by strip through
Pillow's API), then every level is cut into tiles and halved with ``Image.reduce(2)`` from the
level above, each level freed as soon as the next exists; display_pixels(copy=False) keeps the
decoded pixels in one buffer (transposed and colour-converted in place). The display
derivative's task (display.py) decodes the same way. The peak is one full image plus a
quarter of it: Pillow keeps RGB as 4 bytes per pixel, so 530 + 133 MB for 15360 x 8640, and
the worker process peaked at 768 MB (Django and Pillow loaded: 134 MB) where decoding and
copying it three times peaked at 2034 MB (bench/tiles.py, docs/benchmarks.md "Tiles").
libvips (pyvips ``dzsave``) streams strips and would use less, but it is a system library that
neither the Docker image nor the wheels here carry (and it is not installed on the machines
this was measured on, so it could not be shown to be better); Pillow meets the 1 GB target.

These storage names hold the content hash, so they never reach a browser: the page asks for
``/rate/tiles/<display token>...`` (names.py) and the view streams the tile, or hands nginx its
internal path (``X-Accel-Redirect``); it never redirects to the storage. Tiles are cut from
the display pixels (display.py), so they carry no metadata of the original.

Formats: like the display derivative, a tile must not tell which pipeline wrote the original
(display.py). Every tile of every pyramid is encoded by one of two fixed settings, chosen by the
decoded pixels, never by the file: JPEG at quality ``JPEG_QUALITY`` (4:2:0, 8-bit RGB) when no
pixel is transparent, WebP at quality ``WEBP_QUALITY`` (RGBA) when some pixel's alpha is below
255 (display.py ``is_transparent``, the test that also makes a derivative RGBA). Greyscale,
palette and 16-bit files and files whose alpha is 255 everywhere get RGB JPEG tiles like any
photograph: the format tells only what the pixels hold. Tiles are lossy (the derivative is
not): their settings are fixed, whatever the original's, and a 16K pyramid's bytes and build
time stay JPEG's (docs/benchmarks.md "Tiles"). The build records the format on the blob
(``ImageBlob.tiles_format``), and the page's payload names it only then (serving/payloads.py);
before the build the page opens the pyramid through its descriptor. Pyramids built while the
format followed the file's mode (WebP for any mode with an alpha channel, one-channel JPEG for
greyscale) were forgotten by migration blobs 0008, except those of RGB files (JPEG of the same
RGB pixels, as now), so the usual path rebuilds them (campaigns/building/images.py queues the
builds a campaign lacks; the descriptor view queues its own).

Whole levels: every level of more than one tile whose long side is at most
``WHOLE_LEVEL_MAX_SIDE`` is also written as one picture (the level's pixels, the same ones its
tiles are cut from). A page shows a 16K image at fit at one of these levels (a 700 px pane
draws level 10, 960 x 540: four tiles), so it asks for one file per image instead of four to
nine, and can ask for it before its tile viewer exists (static/js/rate/images.js). They add
about a third of the two or three smallest levels to a pyramid. A pyramid built before they
existed has none: a worker writes them (``evalhub.blobs.write_whole_levels``, queued for every
built pyramid by ``manage.py backfill_whole_levels`` and for one pyramid by the tile view that
missed one), each assembled from the level's tiles (:func:`assemble_whole_level`: at most
5 x 3 tiles of 512 px, never the original). Until then the tile view assembles the level the
same way for the request, in memory, without writing (a web process writes no tiles); that
also answers if a stored whole level is ever lost.

Levels follow the DZI spec: level ``L`` of ``max_level = ceil(log2(max(w, h)))`` has size
``ceil(w / 2**(max_level - L)) x ceil(h / 2**(max_level - L))``; level 0 is 1x1.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from evalhub.blobs.display import display_pixels, is_transparent
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.webp import decode_rgba
from evalhub.core.queueing import enqueue_on_commit

# Above this long side an image gets a pyramid, and the rating page opens the pyramid instead
# of the file (evalhub.campaigns.serving.payloads asks needs_tiles).
TILE_MIN_SIDE_PX = 4096
# 510 + 2 x 1 overlap = 512-pixel tiles: few files per level, and power-of-two textures.
TILE_SIZE = 510
TILE_OVERLAP = 1
# Levels up to this long side are also stored whole (module doc): covers a pane up to 1920
# device pixels at 16:9 with one file, ~2x the bytes of level 10 for level 11.
WHOLE_LEVEL_MAX_SIDE = 2048
JPEG_QUALITY = 88
WEBP_QUALITY = 88
DZI_NS = "http://schemas.microsoft.com/deepzoom/2008"
BUILD_TASK = "evalhub.blobs.build_tiles"
# Pyramids per build_tiles message: one, so that the builds of an import are spread over every
# worker (a 16K build takes seconds to a minute; core/queueing.py ``enqueue_batches``).
BUILDS_PER_TASK = 1
WHOLE_LEVELS_TASK = "evalhub.blobs.write_whole_levels"
# A build holds its blob this long at most; a 16K build takes seconds to a minute, so only a
# crashed build's claim ever runs out.
CLAIM_SECONDS = 15 * 60
# A page that asks for a missing pyramid queues its build at most this often per blob.
REQUEST_BUILD_SECONDS = 60


class TilesBusy(Exception):
    """Another build holds the blob's claim (until ``until``); try again later."""

    def __init__(self, until: datetime | None) -> None:
        super().__init__(f"another build holds the tiles until {until}")
        self.until = until


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

    def whole_levels(self) -> list[int]:
        """The levels also stored as one picture: more than one tile, long side at most
        ``WHOLE_LEVEL_MAX_SIDE`` (a level of one tile is whole already: tile ``0_0``)."""
        return [level for level in range(self.max_level + 1)
                if self.grid(level) != (1, 1)
                and max(self.level_size(level)) <= WHOLE_LEVEL_MAX_SIDE]


def needs_tiles(blob: ImageBlob) -> bool:
    return max(blob.width, blob.height) > TILE_MIN_SIDE_PX


def base_path(sha256: str) -> str:
    return f"tiles/{sha256}"


def dzi_path(sha256: str) -> str:
    return f"{base_path(sha256)}/image.dzi"


def tile_path(sha256: str, level: int, col: int, row: int, ext: str) -> str:
    return f"{base_path(sha256)}/image_files/{level}/{col}_{row}.{ext}"


def whole_path(sha256: str, level: int, ext: str) -> str:
    return f"{base_path(sha256)}/image_files/{level}/whole.{ext}"


def large_q() -> Q:
    """Blobs that get a pyramid (the database side of :func:`needs_tiles`)."""
    return Q(width__gt=TILE_MIN_SIDE_PX) | Q(height__gt=TILE_MIN_SIDE_PX)


def pyramid_built(blob: ImageBlob) -> bool:
    """Whether the blob's pyramid is complete and of the current rule: its build recorded the
    tiles' format (module doc; a pyramid recorded without one is built again). ``blob`` needs
    ``tiles_format`` loaded."""
    return bool(blob.tiles_format)


def built_q() -> Q:
    """Blobs whose pyramid is complete (the database side of :func:`pyramid_built`)."""
    return ~Q(tiles_format="")


def tiles_ready_or_requested(blob: ImageBlob) -> bool:
    """Whether the blob's pyramid is complete; if it is not, queue its build (at most once per
    ``REQUEST_BUILD_SECONDS`` per blob, per cache) and return False. Never builds: this is what
    web processes call. ``blob`` needs ``tiles_format`` loaded."""
    if pyramid_built(blob):
        return True
    if needs_tiles(blob) and cache.add(f"tiles-requested:{blob.pk}", 1, REQUEST_BUILD_SECONDS):
        enqueue_on_commit(BUILD_TASK, [blob.pk])
    return False


def dzi_xml(pyramid: Pyramid, fmt: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="{DZI_NS}" Format="{fmt}" Overlap="{pyramid.overlap}" '
        f'TileSize="{pyramid.tile_size}">'
        f'<Size Width="{pyramid.width}" Height="{pyramid.height}"/></Image>\n'
    )


def _decoded(blob: ImageBlob) -> tuple[Image.Image, str]:
    """The blob's display pixels (display.py: EXIF orientation applied, ICC converted to sRGB,
    no metadata) as 8-bit RGB or RGBA, decoded once and kept in one buffer where possible
    (``copy=False``), so that no tile carries the original's comment, EXIF, XMP or profile;
    and the tiles' format, from the pixels (module doc). A still WebP is decoded by libwebp
    into one buffer (webp.py) as RGBA; like any RGBA image whose alpha is 255 everywhere it is
    kept as RGBA (no copy of a 16K image) and cut into RGB JPEG tiles."""
    with default_storage.open(blob.file.name, "rb") as handle, Image.open(handle) as opened:
        source = opened
        if opened.format == "WEBP" and not getattr(opened, "is_animated", False):
            handle.seek(0)
            direct = decode_rgba(handle.read())
            if direct is not None:
                direct.info = dict(opened.info)  # its ICC profile and EXIF orientation
                source = direct
        img = display_pixels(source, copy=False)  # decoded in place; shares its pixels
        del source
    transparent = is_transparent(img)
    if img.mode not in ("RGB", "RGBA") or (transparent and img.mode != "RGBA"):
        img = img.convert("RGBA" if transparent else "RGB")  # L, LA, 1
    return img, "webp" if transparent else "jpeg"


def _halve(image: Image.Image, fmt: str) -> Image.Image:
    """The next level down (``reduce(2)``). Pillow reduces RGBA through a premultiplied copy
    of the whole level; an opaque one (JPEG tiles: alpha 255 everywhere, premultiplying
    changes nothing) is reduced directly, so a 16K WebP level is not held twice."""
    if image.mode == "RGBA" and fmt == "jpeg":
        return image._new(image.im.reduce((2, 2), (0, 0, *image.size)))
    return image.reduce(2)


def _encode(tile: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        if tile.mode == "RGBA":  # alpha 255 everywhere, kept as RGBA to spare a copy
            tile = tile.convert("RGB")
        tile.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    else:
        tile.save(out, format="WEBP", quality=WEBP_QUALITY, method=2)
    return out.getvalue()


def _put(path: str, data: bytes) -> None:
    """Write ``path`` exactly; storages rename on collision, so a stray duplicate is removed."""
    saved = default_storage.save(path, ContentFile(data))
    if saved != path:
        default_storage.delete(saved)


def delete_tree(path: str) -> None:
    """Remove every file under ``path``: what a crashed build left, or a deleted blob's
    pyramid (storages have no rmtree)."""
    if not default_storage.exists(path):
        return
    dirs, files = default_storage.listdir(path)
    for name in files:
        default_storage.delete(f"{path}/{name}")
    for name in dirs:
        delete_tree(f"{path}/{name}")


def _cut_level(sha256: str, image: Image.Image, pyramid: Pyramid, level: int,
               fmt: str) -> None:
    cols, rows = pyramid.grid(level)
    for col in range(cols):
        for row in range(rows):
            tile = image.crop(pyramid.tile_box(level, col, row))
            _put(tile_path(sha256, level, col, row, fmt), _encode(tile, fmt))


def _write_pyramid(blob: ImageBlob) -> tuple[Pyramid, str]:
    """Write every tile (and the whole levels: module doc), then the descriptor; returns the
    geometry and the tiles' format. Each level
    is halved from the one above (``reduce(2)`` rounds up, exactly like the DZI formula; much
    faster than resampling the original) and the level above is dropped at once: at most a
    level and its half are held."""
    image, fmt = _decoded(blob)
    pyramid = Pyramid(*image.size)
    whole = set(pyramid.whole_levels())
    for level in range(pyramid.max_level, -1, -1):
        if image.size != pyramid.level_size(level):
            image = image.resize(pyramid.level_size(level), Image.Resampling.BOX)
        _cut_level(blob.sha256, image, pyramid, level, fmt)
        if level in whole:
            _put(whole_path(blob.sha256, level, fmt), _encode(image, fmt))
        if level > 0:
            image = _halve(image, fmt)  # the only reference to the level above goes here
    _put(dzi_path(blob.sha256), dzi_xml(pyramid, fmt).encode())
    return pyramid, fmt


def assemble_whole_level(sha256: str, pyramid: Pyramid, level: int, fmt: str) -> bytes:
    """A whole level of a pyramid built before whole levels were stored, pasted together from
    its tiles (each tile at its box; overlaps hold equal pixels) and encoded like a tile.
    Bounded: a whole level is at most ``WHOLE_LEVEL_MAX_SIDE`` pixels long; the original is
    never read. Raises FileNotFoundError when a tile is missing."""
    mode = "RGBA" if fmt == "webp" else "RGB"
    level_image = Image.new(mode, pyramid.level_size(level))
    cols, rows = pyramid.grid(level)
    for col in range(cols):
        for row in range(rows):
            left, top, _, _ = pyramid.tile_box(level, col, row)
            name = tile_path(sha256, level, col, row, fmt)
            with default_storage.open(name, "rb") as handle, Image.open(handle) as tile:
                level_image.paste(tile.convert(mode), (left, top))
    return _encode(level_image, fmt)


@dataclass(frozen=True)
class WholeLevels:
    """What :func:`blob_write_whole_levels` did for one pyramid: levels ``written``, levels
    already ``stored``, and levels ``unassembled`` because one of their tiles is missing."""

    written: int = 0
    stored: int = 0
    unassembled: int = 0


def blob_write_whole_levels(blob: ImageBlob) -> WholeLevels:
    """Write the whole levels (module doc) that the blob's complete pyramid lacks, each
    assembled from the level's tiles, so a pyramid built before whole levels existed gets them
    without being rebuilt (the original is never read: a few MB of memory at most).

    Idempotent: a stored level is left alone, so a second run writes nothing; two runs at once
    write equal bytes (``_put``). A blob without a complete pyramid gets nothing here (its
    build writes them). ``blob`` needs ``sha256``, ``width``, ``height`` and ``tiles_format``
    loaded; the tiles' format is the one the build recorded, which the page asks for
    (serving/payloads.py).
    """
    if not needs_tiles(blob) or not pyramid_built(blob):
        return WholeLevels()
    pyramid = Pyramid(blob.width, blob.height)
    fmt = blob.tiles_format
    written = stored = unassembled = 0
    for level in pyramid.whole_levels():
        name = whole_path(blob.sha256, level, fmt)
        if default_storage.exists(name):
            stored += 1
            continue
        try:
            data = assemble_whole_level(blob.sha256, pyramid, level, fmt)
        except FileNotFoundError:  # a tile is missing: nothing to assemble from
            unassembled += 1
            continue
        _put(name, data)
        written += 1
    return WholeLevels(written=written, stored=stored, unassembled=unassembled)


def whole_levels_requested(blob_id: int) -> None:
    """Queue the writing of a pyramid's missing whole levels (at most once per
    ``REQUEST_BUILD_SECONDS`` per blob, per cache): what the tile view calls when it had to
    assemble one for a request."""
    if cache.add(f"whole-levels-requested:{blob_id}", 1, REQUEST_BUILD_SECONDS):
        enqueue_on_commit(WHOLE_LEVELS_TASK, [blob_id])


def _claim(blob: ImageBlob) -> bool:
    """Take the blob for one build: unbuilt (:func:`built_q`) and unclaimed (or the claim ran
    out)."""
    now = timezone.now()
    return bool(ImageBlob.objects.filter(pk=blob.pk).exclude(built_q()).filter(
        Q(tiles_claimed_until__isnull=True) | Q(tiles_claimed_until__lt=now)
    ).update(tiles_claimed_until=now + timedelta(seconds=CLAIM_SECONDS)))


def blob_build_tiles(blob: ImageBlob) -> bool:
    """Build the blob's pyramid unless it exists. Returns whether one was built.

    Idempotent: a built pyramid (:func:`pyramid_built`) is never rebuilt; one left
    half-written by a crashed build, or recorded without its format, is wiped and rebuilt.
    Raises :class:`TilesBusy` while another build holds the blob (the task retries later).
    Blobs below the tiling threshold get none (returns False).
    """
    if not needs_tiles(blob):
        return False
    if not _claim(blob):
        state = ImageBlob.objects.filter(pk=blob.pk).only(
            "tiles_format", "tiles_claimed_until").first()
        if state is None or pyramid_built(state):
            return False
        raise TilesBusy(state.tiles_claimed_until)
    try:
        delete_tree(base_path(blob.sha256))  # a crashed build's, or an older rule's, tiles
        _, fmt = _write_pyramid(blob)
    except BaseException:
        # Let the next attempt start at once instead of waiting for the claim to run out.
        ImageBlob.objects.filter(pk=blob.pk).update(tiles_claimed_until=None)
        raise
    blob.tiles_built_at = timezone.now()
    blob.tiles_format = fmt
    ImageBlob.objects.filter(pk=blob.pk).update(tiles_built_at=blob.tiles_built_at,
                                                tiles_format=fmt, tiles_claimed_until=None)
    return True
