"""Display derivatives: the only image bytes an annotator's browser receives.

An imported file may carry anything its writer put in it: a PNG ``tEXt`` chunk or a JPEG
EXIF/XMP field saying "Model: X, run Y", a comment, an ICC profile whose description names a
pipeline, file times. The annotator's page therefore never gets the imported file, only a
derivative written here from the decoded pixels:

- pixels as a browser shows the original: EXIF orientation applied; an embedded ICC profile
  converted to sRGB (relative colorimetric) and then dropped; a transparent colour key or
  palette turned into an alpha channel;
- a fresh image object (no ``info`` carried over), so Pillow's encoders write no EXIF, XMP,
  ICC, text chunks, comments, dpi or times: a PNG holds only ``IHDR``/``IDAT``/``IEND``, a JPEG
  only the ``APP0`` JFIF header besides the image data, a WebP only its image chunk(s);
- encodings: PNG, BMP, TIFF and GIF become lossless PNG (16-bit greyscale stays 16-bit); JPEG
  becomes JPEG with the original's quantisation tables and chroma subsampling when it was 8-bit
  RGB or greyscale (re-encoding with the same tables loses least), else quality 95 at 4:4:4;
  lossless WebP stays lossless, lossy WebP is re-encoded at quality 95. Animated files give
  their first frame.

Images over ``DISPLAY_MAX_SIDE`` (4096 px, the side above which they get Deep Zoom tiles,
blobs/tiles.py) are never sent whole to a rating or gallery page: those open the tiles, cut
from the same display pixels at full resolution. Their derivative (admin thumbnails, a video's
poster, a download) is reduced by the smallest integer factor that brings the long side to
4096 px or less (box average, ``Image.reduce``, strip by strip), from the same bounded decode
as the tiles (a still WebP straight into one buffer by libwebp, blobs/webp.py; the pixels held
once), and encoded as below except that a reduced JPEG gets quality 95 at 4:4:4 (the
original's tables fit only its own pixel grid). Encoding 16K pixels was the costly part: a
15360 x 8640 WebP went through Pillow's animation decoder and encoder, each with whole-image
buffers (3.1 GB peak), a PNG took minutes to compress; the reduced image is 1/16 of that.

The derivative is stored under an opaque internal name (``display/<2 hex>/<token>.<ext>``,
see ``names.py``; shared by every project, never sent: URLs carry a per-project name) and is
deterministic: the same original always gives the same bytes, so a
redelivered task or a concurrent build writes the same file.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from django.core.files.base import File
from django.core.files.storage import default_storage
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin

from evalhub.blobs.locks import blob_lock
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import display_path
from evalhub.blobs.webp import decode_rgba

# Above this many pixels a missing derivative is not built inside a web request (the view
# answers 503 and the worker's task makes it); below, building takes well under a second.
DISPLAY_SYNC_MAX_PIXELS = 2048 * 2048
# JPEG and lossy WebP originals whose tables cannot be reused are re-encoded at this quality.
REENCODE_QUALITY = 95
# Above this long side the derivative is reduced (module doc); equal to tiles.TILE_MIN_SIDE_PX
# (tiles.py imports this module, so the value is repeated; a test checks they agree).
DISPLAY_MAX_SIDE = 4096
# Rows of the reduced image made per strip: a strip of the full image is this times the factor
# rows high (15360 px wide, 4 bytes per pixel, factor 4: 16 MB), far below the decoded image.
REDUCE_STRIP_ROWS = 64


@dataclass(frozen=True)
class DisplayFormat:
    """How a derivative is encoded: Pillow's format name, file extension, MIME type."""

    pillow: str
    extension: str
    content_type: str


PNG = DisplayFormat("PNG", "png", "image/png")
JPEG = DisplayFormat("JPEG", "jpg", "image/jpeg")
WEBP = DisplayFormat("WEBP", "webp", "image/webp")
BY_EXTENSION = {fmt.extension: fmt for fmt in (PNG, JPEG, WEBP)}


def display_format(source_format: str) -> DisplayFormat:
    """The derivative's encoding for an original of ``source_format`` (PIL's format name)."""
    return {"JPEG": JPEG, "WEBP": WEBP}.get(source_format, PNG)


def blob_display_path(blob: ImageBlob) -> str:
    """Where the blob's derivative is (or will be) stored."""
    return display_path(blob.display_token, display_format(blob.format).extension)


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


def display_pixels(img: Image.Image, *, keep_16_bit: bool = False,
                   copy: bool = True) -> Image.Image:
    """The pixels a browser would show for ``img``, in a fresh image with no metadata.

    Modes out: ``RGB``, ``RGBA``, ``L``, ``LA``, ``1``, or ``I;16`` (16-bit greyscale, only with
    ``keep_16_bit``; otherwise scaled to 8 bits as value / 256).

    ``copy=False``: ``img`` is decoded, transposed and colour-converted in place and the result
    shares its pixels (``img`` is of no further use to the caller); a 16K RGB image then costs
    its pixels once (530 MB: Pillow keeps RGB as 4 bytes per pixel) where a copy per step cost up
    to four times that.
    """
    icc = img.info.get("icc_profile")
    has_key = "transparency" in img.info
    if copy:
        img = ImageOps.exif_transpose(img)
    else:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    if img.mode == "P" or (has_key and img.mode in ("RGB", "L", "1")):
        img = img.convert("LA" if img.mode in ("L", "1") else "RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        if keep_16_bit and img.mode != "F":
            img = img.convert("I;16") if img.mode != "I;16" else img
        else:
            # Scale to 8 bits instead of clipping everything above 255 to white.
            img = img.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if img.mode not in ("RGB", "RGBA", "L", "LA", "1", "I;16"):
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


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file's image chunk is ``VP8L`` (lossless) rather than ``VP8 `` (lossy).

    RIFF layout: ``RIFF <size> WEBP`` then chunks of ``<fourcc> <u32 LE size> <data, padded to
    even>``; an extended file (``VP8X``) lists ICC/ANIM/ALPH chunks before the image chunk.
    """
    offset = 12
    while offset + 8 <= len(data):
        fourcc = data[offset:offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4:offset + 8])
        if fourcc == b"VP8L":
            return True
        if fourcc in (b"VP8 ", b"ANMF"):
            return False
        offset += 8 + size + (size & 1)
    return False


# Pillow's Huffman optimisation buffers the whole encoded JPEG (2 bytes per pixel with kept
# tables: 265 MB for 15360 x 8640), so it is used below this size only (derivatives over
# 4096 px on a side are reduced now, so this is a guard rather than a rule).
OPTIMIZE_MAX_PIXELS = 4096 * 4096
# The WebP chunks before the image chunk (VP8X, ICCP, ...) lie within this head of the file.
WEBP_HEAD_BYTES = 1 << 20


def reduce_factor(width: int, height: int) -> int:
    """The smallest integer ``f`` with ``ceil(max(width, height) / f) <= DISPLAY_MAX_SIDE``
    (1 for images that are not reduced)."""
    return max(1, -(-max(width, height) // DISPLAY_MAX_SIDE))


def reduce_in_strips(img: Image.Image, factor: int) -> Image.Image:
    """``img`` reduced by ``factor`` (box average of ``factor x factor`` blocks, the output
    ``ceil(w / factor) x ceil(h / factor)``, as ``Image.reduce``), one strip of rows at a time,
    so that no second full-size buffer is made (Pillow's ``reduce`` of an RGBA or LA image
    premultiplies a copy of the whole image). Modes ``reduce`` lacks (``1``, ``I;16``) go
    through ``L`` / ``I`` per strip and back."""
    if factor == 1:
        return img
    through = {"1": "L", "I;16": "I"}.get(img.mode)
    width, height = img.size
    out = Image.new(img.mode if through is None else through,
                    (-(-width // factor), -(-height // factor)))
    step = REDUCE_STRIP_ROWS * factor
    for top in range(0, height, step):
        strip = img.crop((0, top, width, min(height, top + step)))
        if through:
            strip = strip.convert(through)
        out.paste(strip.reduce(factor), (0, top // factor))
    if img.mode == "I;16":
        out = out.convert("I;16")
    elif img.mode == "1":
        out = out.convert("1", dither=Image.Dither.NONE)
    return out


def _decoded(source: BinaryIO, opened: Image.Image, *, keep_16_bit: bool,
             bounded: bool) -> Image.Image:
    """The display pixels of the opened file, decoded in place (``copy=False``). ``bounded``:
    a still WebP is decoded by libwebp into one buffer (webp.py), as the tiles are, instead of
    Pillow's animation decoder (two canvases and a copy); it comes back as RGBA, with alpha 255
    everywhere when the file has none (the caller makes it RGB once reduced)."""
    if bounded and opened.format == "WEBP" and not getattr(opened, "is_animated", False):
        source.seek(0)
        direct = decode_rgba(source.read())
        if direct is not None:
            direct.info = dict(opened.info)  # its ICC profile and EXIF orientation
            return display_pixels(direct, copy=False)
    return display_pixels(opened, keep_16_bit=keep_16_bit, copy=False)


def write_display(source: BinaryIO, out: BinaryIO) -> DisplayFormat:
    """Decode an accepted image from ``source`` and write its display derivative to ``out``
    (see the module doc). Neither the file nor the encoded derivative is held in memory, and the
    pixels are held once (display_pixels(copy=False)); images over ``DISPLAY_MAX_SIDE`` are
    reduced (module doc)."""
    head = source.read(WEBP_HEAD_BYTES)
    source.seek(0)
    with Image.open(source) as opened:
        source_format = opened.format or ""
        fmt = display_format(source_format)
        factor = reduce_factor(*opened.size)
        keep_tables = (factor == 1 and source_format == "JPEG" and opened.mode in ("RGB", "L")
                       and isinstance(opened, JpegImagePlugin.JpegImageFile))
        qtables = opened.quantization if keep_tables else None
        sampling = JpegImagePlugin.get_sampling(opened) if keep_tables else -1
        opaque = "A" not in opened.mode and "transparency" not in opened.info
        pixels = _decoded(source, opened, keep_16_bit=fmt is PNG, bounded=factor > 1)
    # The only reference to the full-size pixels is dropped here.
    pixels = reduce_in_strips(pixels, factor)
    if fmt is WEBP and opaque and pixels.mode == "RGBA":  # libwebp's RGBA of an opaque file
        pixels = pixels.convert("RGB")
    if fmt is JPEG:
        if pixels.mode not in ("RGB", "L"):
            pixels = pixels.convert("RGB")
        optimize = pixels.width * pixels.height <= OPTIMIZE_MAX_PIXELS
        if qtables and sampling >= 0:
            pixels.save(out, format="JPEG", qtables=qtables, subsampling=sampling,
                        optimize=optimize)
        else:
            pixels.save(out, format="JPEG", quality=REENCODE_QUALITY, subsampling=0,
                        optimize=optimize)
    elif fmt is WEBP:
        if pixels.mode not in ("RGB", "RGBA"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        if _webp_is_lossless(head):
            pixels.save(out, format="WEBP", lossless=True, exact=True, method=4)
        else:
            pixels.save(out, format="WEBP", quality=REENCODE_QUALITY, method=4)
    else:
        pixels.save(out, format="PNG", compress_level=6)
    return fmt


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
    """Write the blob's derivative unless it has one. Returns whether one was written.

    Idempotent: the row records the derivative only after the file is complete, so a file
    found without the record was left by a crashed build and is rewritten. Concurrent builds
    on one host wait for each other (file lock); on different hosts they write identical bytes
    to the same name.
    """
    if blob.display:
        return False
    with blob_lock("display", blob.sha256):
        current = ImageBlob.objects.filter(pk=blob.pk).values_list("display", flat=True).first()
        if current:
            blob.display = current
            return False
        path = blob_display_path(blob)
        with (default_storage.open(blob.file.name, "rb") as handle,
              tempfile.TemporaryFile() as encoded):
            write_display(handle, encoded)
            encoded.seek(0)
            if default_storage.exists(path):
                default_storage.delete(path)
            saved = default_storage.save(path, File(encoded, name=path))
        _forget_file_time(saved)
        ImageBlob.objects.filter(pk=blob.pk).update(display=saved)
        blob.display = saved
    return True
