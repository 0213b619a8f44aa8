"""Display derivatives: the only image bytes an annotator's browser receives.

An imported file may carry anything its writer put in it: a PNG ``tEXt`` chunk or a JPEG
EXIF/XMP field saying "Model: X, run Y", a comment, an ICC profile whose description names a
pipeline, file times. It also carries its writer's habits: its format, a JPEG's quality
(quantisation tables) and chroma subsampling, an alpha channel that is 255 everywhere, a bit
depth. Two pipelines that save differently (one model writes JPEG at quality 73, another PNG)
would label every image of their runs, from pair to pair. The annotator's page therefore never
gets the imported file, nor anything encoded after it, only a derivative written here from the
decoded pixels, encoded the same way for every image:

- pixels as a browser shows the original: EXIF orientation applied; an embedded ICC profile
  converted to sRGB (relative colorimetric) and then dropped; a transparent colour key or
  palette turned into an alpha channel; 16-bit samples scaled to 8 bits (value / 256: the high
  byte); animated files give their first frame;
- one mode rule, on the pixels (:func:`rgb_or_rgba`): 8-bit RGB, or RGBA only when some pixel
  is transparent (alpha below 255, :func:`is_transparent`), decided on the full-resolution
  pixels, as the tiles' format is (tiles.py), so the derivative is RGBA exactly when the
  tiles are WebP, also when it is reduced (below: a reduced block that holds a transparent
  pixel keeps an alpha below 255, where the box average would round 254 up to 255). Greyscale,
  palette, 16-bit and alpha that is opaque everywhere all become RGB; the file's mode says
  nothing;
- one encoding (:data:`DISPLAY`, :data:`DISPLAY_ENCODER`): lossless WebP at the fastest effort
  (``method=0``, ``quality=0``), ``exact`` (the colour under a transparent pixel is kept), for
  every original whatever its format and settings. Lossless: the derivative holds exactly the
  decoded pixels, so a JPEG original's derivative carries its artifacts (what a browser would
  show of it) but not its tables; the URL's extension (``.webp``) and the ``Content-Type``
  (``image/webp``) are the same for every image;
- a fresh image object (no ``info`` carried over), so the encoder writes no EXIF, XMP, ICC,
  text, comments, dpi or times: the file is ``RIFF``/``WEBP`` and one ``VP8L`` chunk.

Why lossless WebP rather than PNG: measured on the 2-core development machine (Pillow 13,
libwebp 1.6, zlib 1.2.13; Chromium 156 decoding with ``createImageBitmap``), a scratch script
on photograph-like pictures (1/f noise in correlated channels plus sensor noise; "a JPEG's
pixels": the same picture after JPEG quality 90, what a JPEG original's derivative holds).
Each cell: encode time, bytes, Chromium decode time; medians, two runs (ranges) while other
sessions' tests shared the machine (load 2-6), so the times are noisy, the bytes exact:

=======================  ===============================  ===============================
picture                  PNG, zlib level 6                lossless WebP, method 0 q 0
=======================  ===============================  ===============================
512 x 512 photograph     40-50 ms, 613 kB, 5-7 ms         14 ms, 540 kB, 8-10 ms
1024 x 1024 photograph   176-235 ms, 2439 kB, 35-36 ms    38-56 ms, 2149 kB, 36-44 ms
1024 x 1024 JPEG pixels  196-239 ms, 2457 kB, 24-27 ms    34-54 ms, 1683 kB, 27-59 ms
2048 x 2048 photograph   1152 ms, 9507 kB, 84 ms          189 ms, 8382 kB, 130 ms
2048 x 2048 JPEG pixels  1410 ms, 9557 kB, 72 ms          357 ms, 6469 kB, 133 ms
=======================  ===============================  ===============================

WebP encodes 3 to 6 times faster and is 12 % (a photograph) to 32 % (a JPEG's pixels)
smaller; Chromium decodes it somewhat slower (0-35 ms more at 1024 px, 50-60 ms at 2048 px),
about what the bytes saved take to arrive at 100 Mbit/s (25-60 ms at 1024 px, 90-250 ms at
2048 px). PNG at level 1 took 124-190 ms at 1024 px; lossless WebP at the default effort
(``method=4``) saved 2-6 % more bytes for about ten times the encode time. The fast encode
keeps a derivative written in a web request (up to ``DISPLAY_SYNC_MAX_PIXELS``, 2048 x 2048)
well under a second, where PNG took over one. The encoder's memory: 181 MB more for a
3840 x 2160 picture (a 16K image's reduced derivative, below), taken after the full-size pixels
are freed, so a worker's peak stays the decode's: 764 MB for a 15360 x 8640 JPEG
(docs/benchmarks.md "Tiles").

Images over ``DISPLAY_MAX_SIDE`` (4096 px, the side above which they get Deep Zoom tiles,
blobs/tiles.py) are never sent whole to a rating or gallery page: those open the tiles, cut
from the same display pixels at full resolution. Their derivative (admin thumbnails, a video's
poster, a download) is reduced by the smallest integer factor that brings the long side to
4096 px or less (box average, ``Image.reduce``, strip by strip; a block holding a
transparent pixel stays transparent), from the same bounded decode
as the tiles (a still WebP straight into one buffer by libwebp, blobs/webp.py; the pixels held
once), and encoded as above. Encoding 16K pixels was the costly part: a 15360 x 8640 WebP went
through Pillow's animation decoder and encoder, each with whole-image buffers (3.1 GB peak), a
PNG took minutes to compress; the reduced image is 1/16 of that.

The derivative is stored under an opaque internal name
(``display/<2 hex>/<token>.r<rule>.webp``, see ``names.py``; shared by every project, never
sent: URLs carry a per-project name) and is deterministic: the same original always gives the
same bytes, so a redelivered task or a concurrent build writes the same file. The name holds
the rule it was written by (:data:`DISPLAY_RULE`): a derivative written by an earlier rule
(rule 1 kept the original's format, tables and mode, named ``<token>.<png|jpg|webp>``) is not
current, so it is rewritten like a missing one: in the web request that asks for it when the
image is small (``DISPLAY_SYNC_MAX_PIXELS``), otherwise by the worker (the media view answers
503 and queues ``evalhub.blobs.make_displays``), and the old file is deleted. The rule is read
from the name the row records (:func:`display_is_current`, and :func:`display_current_q` for a
query), never from the storage, so a campaign can ask in one query whether its panes would
answer 503 (campaigns/building/images.py, which serves a campaign only once they would not).
After an upgrade that raises the rule, ``manage.py rewrite_displays`` queues the rewriting of
every derivative not current, ``MAKE_BATCH`` blobs per task (docs/deployment.md).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from django.core.cache import cache
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db.models import BigIntegerField, F, Q
from django.db.models.functions import Cast
from django.db.models.lookups import GreaterThan
from PIL import Image, ImageCms, ImageOps

from evalhub.blobs.locks import blob_lock
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import display_path, display_rule_suffix
from evalhub.blobs.webp import decode_rgba
from evalhub.core.queueing import enqueue_batches, enqueue_on_commit

# Above this many pixels a missing derivative is not built inside a web request (the view
# answers 503 and the worker's task makes it); below, building takes well under a second.
DISPLAY_SYNC_MAX_PIXELS = 2048 * 2048
# Above this long side the derivative is reduced (module doc); equal to tiles.TILE_MIN_SIDE_PX
# (tiles.py imports this module, so the value is repeated; a test checks they agree).
DISPLAY_MAX_SIDE = 4096
# Rows of the reduced image made per strip: a strip of the full image is this times the factor
# rows high (15360 px wide, 4 bytes per pixel, factor 4: 16 MB), far below the decoded image.
REDUCE_STRIP_ROWS = 64
# The rule derivatives are written by, part of their stored name (module doc): raise it when
# the encoding changes, so that every derivative written before is rewritten.
DISPLAY_RULE = 2
MAKE_TASK = "evalhub.blobs.make_displays"
# Blobs per make_displays message queued here (a campaign's missing derivatives) and by
# ``manage.py rewrite_displays``. Measured on the 2-core development machine (photograph-like
# JPEG and PNG originals): 0.35-0.5 s a derivative at 2100 x 2100, 1.2-1.6 s at 4096 x 4096 (a
# 16K image's decode takes a few seconds more), so a task ends in about 15 minutes at most for
# images up to 4096 px, far below the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT,
# 7 h), past which a task still running is delivered again.
MAKE_BATCH = 500
# A page that asks for a derivative too large to write in a web request queues its writing at
# most this often per blob.
REQUEST_BUILD_SECONDS = 60


@dataclass(frozen=True)
class DisplayFormat:
    """How a derivative is encoded: Pillow's format name, file extension, MIME type."""

    pillow: str
    extension: str
    content_type: str


# The one encoding of every derivative (module doc: chosen by measurement).
DISPLAY = DisplayFormat("WEBP", "webp", "image/webp")
DISPLAY_ENCODER: dict[str, Any] = {"lossless": True, "method": 0, "quality": 0, "exact": True}


def blob_display_path(blob: ImageBlob) -> str:
    """Where the blob's derivative is (or will be) stored under the current rule."""
    return display_path(blob.display_token, DISPLAY_RULE, DISPLAY.extension)


# How the recorded name of a derivative written by the current rule ends (names.py).
_CURRENT_SUFFIX = display_rule_suffix(DISPLAY_RULE, DISPLAY.extension)


def display_is_current(blob: ImageBlob) -> bool:
    """Whether the blob has a derivative written by the current rule, as the name its row
    records says (a missing one, or one of an earlier rule, is written by
    :func:`blob_make_display`)."""
    return blob.display.name.endswith(_CURRENT_SUFFIX)


def display_current_q() -> Q:
    """Blobs whose derivative is current (the database side of :func:`display_is_current`)."""
    return Q(display__endswith=_CURRENT_SUFFIX)


def display_by_worker(blob: ImageBlob) -> bool:
    """Whether the blob is too large for its derivative to be written in a web request
    (``DISPLAY_SYNC_MAX_PIXELS``): until a worker has written it, the media view answers 503."""
    return blob.width * blob.height > DISPLAY_SYNC_MAX_PIXELS


def display_by_worker_q() -> Q:
    """The database side of :func:`display_by_worker` (the product in 64 bits: a very wide
    image's could pass 2**31)."""
    return Q(GreaterThan(Cast("width", BigIntegerField()) * F("height"), DISPLAY_SYNC_MAX_PIXELS))


def display_requested(blob_id: int) -> None:
    """Queue the writing of a blob's derivative (at most once per ``REQUEST_BUILD_SECONDS``
    per blob, per cache): what the media view does when it answers 503 for an image too large
    to encode in a web request, whose derivative is missing or of an earlier rule."""
    if cache.add(f"display-requested:{blob_id}", 1, REQUEST_BUILD_SECONDS):
        enqueue_on_commit(MAKE_TASK, [blob_id])


def displays_queued(blob_ids: Sequence[int]) -> None:
    """Queue the writing of the given blobs' derivatives after the current transaction,
    ``MAKE_BATCH`` blobs per task (the task skips those that are current)."""
    enqueue_batches(MAKE_TASK, blob_ids, MAKE_BATCH)


# ---------------------------------------------------------------- pixels


def _to_srgb(img: Image.Image, icc: bytes, *, in_place: bool = False) -> Image.Image:
    """Convert pixels from the embedded profile to sRGB; greyscale keeps its values.

    An unreadable profile is ignored (the pixels are taken as sRGB, as browsers do).
    ``in_place``: an RGB image is converted in its own buffer (no second copy of a 16K image).
    """
    if img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        if in_place and img.mode == "RGB":
            ImageCms.profileToProfile(
                img, source, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                inPlace=True)
            return img
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(
            img, source, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img
    if img.mode == "RGBA" and converted is not None:
        # Colour management transforms colour only; keep the original alpha exactly.
        converted.putalpha(img.getchannel("A"))
    return converted if converted is not None else img


def display_pixels(img: Image.Image, *, copy: bool = True) -> Image.Image:
    """The pixels a browser would show for ``img``, in a fresh image with no metadata.

    Modes out: ``RGB``, ``RGBA``, ``L``, ``LA`` or ``1`` (16-bit samples scaled to 8 bits as
    value / 256); :func:`rgb_or_rgba` makes them the derivative's.

    ``copy=False``: ``img`` is decoded, transposed and colour-converted in place and the result
    shares its pixels (``img`` is of no further use to the caller); a 16K RGB image then costs
    its pixels once (530 MB: Pillow keeps RGB as 4 bytes per pixel) where a copy per step cost up
    to four times that.
    """
    icc = img.info.get("icc_profile")
    has_key = "transparency" in img.info
    key = img.info.get("transparency")
    if copy:
        img = ImageOps.exif_transpose(img)
    else:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    if img.mode == "P" or (has_key and img.mode in ("RGB", "L", "1")):
        img = img.convert("LA" if img.mode in ("L", "1") else "RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Scale to 8 bits instead of clipping everything above 255 to white.
        wide = img.convert("I")
        grey = wide.point(lambda value: value * (1 / 256)).convert("L")
        if has_key and isinstance(key, int):
            # A 16-bit grey PNG's tRNS names one sample value: a browser shows those pixels
            # transparent (Pillow's convert would drop the key with the depth).
            opaque = np.asarray(wide) != key
            grey = Image.merge("LA", (grey, Image.fromarray(opaque.astype(np.uint8) * 255)))
        img = grey
    if img.mode not in ("RGB", "RGBA", "L", "LA", "1"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")  # CMYK, YCbCr, PA, ...
    if icc:
        img = _to_srgb(img, icc, in_place=not copy)
    img.load()
    # A new plain image on the same pixels (Pillow's own wrapping, as crop and convert do, with
    # no copy of a 16K image): no plugin attributes, and nothing of ``info`` (text, EXIF, XMP,
    # ICC, comment, dpi, transparency) can reach an encoder that reads it by default.
    fresh = img._new(img.im)
    fresh.info = {}
    return fresh


def is_transparent(img: Image.Image) -> bool:
    """Whether some pixel of ``img`` is not fully opaque (alpha below 255): the one test of
    transparency, for derivatives and tiles (tiles.py), always asked of the full-resolution
    display pixels, so that a derivative's mode and its tiles' format agree. It reads the
    pixels, never the file's mode, which is a writer's habit (an RGBA file whose alpha is 255
    everywhere is opaque). One pass over a copy of the alpha band alone (a quarter of an RGBA
    image; ``Image.getextrema`` would copy every band in turn)."""
    bands = img.getbands()
    if "A" not in bands:
        return False
    img.load()
    return img.im.getband(bands.index("A")).getextrema()[0] < 255


def rgb_or_rgba(img: Image.Image, *, transparent: bool) -> Image.Image:
    """``img`` (:func:`display_pixels`' modes) as 8-bit RGB, or RGBA when ``transparent``
    (:func:`is_transparent` of the full-resolution pixels): the derivative's only two modes
    (module doc)."""
    mode = "RGBA" if transparent else "RGB"
    return img if img.mode == mode else img.convert(mode)


def reduce_factor(width: int, height: int) -> int:
    """The smallest integer ``f`` with ``ceil(max(width, height) / f) <= DISPLAY_MAX_SIDE``
    (1 for images that are not reduced)."""
    return max(1, -(-max(width, height) // DISPLAY_MAX_SIDE))


def _transparent_blocks_kept(strip: Image.Image, small: Image.Image,
                             factor: int) -> Image.Image:
    """``small`` (``strip`` reduced by ``factor``) with an alpha of at most 254 wherever its
    block of ``strip`` holds a transparent pixel. The box average rounds a block of alphas 254
    and 255 up to 255: a picture whose only transparent pixels are nearly opaque would get an
    opaque derivative (the encoder then stores no alpha at all) while its tiles, cut at full
    resolution, are transparent."""
    alpha = np.asarray(strip.getchannel("A"))
    height, width = alpha.shape
    rows, cols = -(-height // factor), -(-width // factor)
    held = np.zeros((rows * factor, cols * factor), dtype=bool)
    held[:height, :width] = alpha < 255
    held = held.reshape(rows, factor, cols, factor).any(axis=(1, 3))
    if held.any():
        kept = np.array(small.getchannel("A"))
        kept[held] = np.minimum(kept[held], 254)
        small.putalpha(Image.fromarray(kept, "L"))
    return small


def reduce_in_strips(img: Image.Image, factor: int, *,
                     keep_transparent: bool = False) -> Image.Image:
    """``img`` reduced by ``factor`` (box average of ``factor x factor`` blocks, the output
    ``ceil(w / factor) x ceil(h / factor)``, as ``Image.reduce``), one strip of rows at a time,
    so that no second full-size buffer is made (Pillow's ``reduce`` of an RGBA or LA image
    premultiplies a copy of the whole image). A mode ``reduce`` lacks (``1``) goes through ``L``
    per strip and back. ``keep_transparent`` (``img`` is transparent, :func:`is_transparent`):
    a block holding a transparent pixel stays transparent (alpha at most 254), so the reduced
    picture is transparent as the full one is."""
    if factor == 1:
        return img
    through = {"1": "L"}.get(img.mode)
    width, height = img.size
    out = Image.new(img.mode if through is None else through,
                    (-(-width // factor), -(-height // factor)))
    step = REDUCE_STRIP_ROWS * factor
    for top in range(0, height, step):
        strip = img.crop((0, top, width, min(height, top + step)))
        if through:
            strip = strip.convert(through)
        small = strip.reduce(factor)
        if keep_transparent:
            small = _transparent_blocks_kept(strip, small, factor)
        out.paste(small, (0, top // factor))
    if img.mode == "1":
        out = out.convert("1", dither=Image.Dither.NONE)
    return out


def _decoded(source: BinaryIO, opened: Image.Image, *, bounded: bool) -> Image.Image:
    """The display pixels of the opened file, decoded in place (``copy=False``). ``bounded``:
    a still WebP is decoded by libwebp into one buffer (webp.py), as the tiles are, instead of
    Pillow's animation decoder (two canvases and a copy); it comes back as RGBA, with alpha 255
    everywhere when the file has none (:func:`rgb_or_rgba` makes it RGB once reduced)."""
    if bounded and opened.format == "WEBP" and not getattr(opened, "is_animated", False):
        source.seek(0)
        direct = decode_rgba(source.read())
        if direct is not None:
            direct.info = dict(opened.info)  # its ICC profile and EXIF orientation
            return display_pixels(direct, copy=False)
    return display_pixels(opened, copy=False)


def write_display(source: BinaryIO, out: BinaryIO) -> DisplayFormat:
    """Decode an accepted image from ``source`` and write its display derivative to ``out``
    (see the module doc: the same encoding whatever the original). Neither the file nor the
    encoded derivative is held in memory, and the pixels are held once
    (display_pixels(copy=False)); images over ``DISPLAY_MAX_SIDE`` are reduced (module doc)."""
    with Image.open(source) as opened:
        factor = reduce_factor(*opened.size)
        pixels = _decoded(source, opened, bounded=factor > 1)
        # Leaving ``with`` keeps the file's image object holding the pixels it decoded; closing
        # it lets the full-size pixels go with ``pixels`` below, before the encoder's buffers
        # (181 MB for a 3840 x 2160 derivative) are taken.
        opened.close()
    # Decided on the full-resolution pixels, as the tiles decide their format (module doc).
    transparent = is_transparent(pixels)
    # The only reference to the full-size pixels is dropped here.
    pixels = rgb_or_rgba(reduce_in_strips(pixels, factor, keep_transparent=transparent),
                         transparent=transparent)
    pixels.save(out, format=DISPLAY.pillow, **DISPLAY_ENCODER)
    return DISPLAY


def render_display(data: bytes) -> tuple[bytes, DisplayFormat]:
    """:func:`write_display` for bytes in memory: the derivative's bytes and format."""
    out = io.BytesIO()
    fmt = write_display(io.BytesIO(data), out)
    return out.getvalue(), fmt


# ---------------------------------------------------------------- storage


def _forget_file_time(name: str) -> None:
    """Set a local derivative's times to the epoch, so that a web server that sends
    ``Last-Modified`` or a time-based ``ETag`` despite our configuration tells nothing about
    when the run was imported. Object storage keeps its own times (docs/deployment.md)."""
    try:
        path = default_storage.path(name)
    except NotImplementedError:
        return
    os.utime(path, (0, 0))


def blob_make_display(blob: ImageBlob) -> bool:
    """Write the blob's derivative unless it has one written by the current rule (a missing
    one, or one of an earlier rule, whose file is then deleted). Returns whether one was
    written.

    Idempotent: the row records the derivative only after the file is complete, so a file
    found without the record was left by a crashed build and is rewritten. Concurrent builds
    on one host wait for each other (file lock); on different hosts they write identical bytes
    to the same name (a storage that renamed the second copy gets it deleted: the name is
    what marks the rule).
    """
    if display_is_current(blob):
        return False
    path = blob_display_path(blob)
    with blob_lock("display", blob.sha256):
        recorded = ImageBlob.objects.filter(pk=blob.pk).values_list("display", flat=True).first()
        if recorded == path:
            blob.display = recorded
            return False
        with (default_storage.open(blob.file.name, "rb") as handle,
              tempfile.TemporaryFile() as encoded):
            write_display(handle, encoded)
            encoded.seek(0)
            if default_storage.exists(path):
                default_storage.delete(path)
            saved = default_storage.save(path, File(encoded, name=path))
        if saved != path:
            default_storage.delete(saved)
        _forget_file_time(path)
        ImageBlob.objects.filter(pk=blob.pk).update(display=path)
        blob.display = path
    if recorded and recorded != path and default_storage.exists(recorded):
        default_storage.delete(recorded)  # an earlier rule's file: it must not be served again
    return True
