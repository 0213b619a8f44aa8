"""Image decoding: bytes or paths -> uint8 RGB tensors (3,H,W), on a thread pool.

Decoding uses PIL (the decoder torchmetrics users feed FID with, so pixels agree with them;
PIL releases the GIL while decoding, so threads scale). Conversions, all to 8-bit RGB:

* grayscale (L, I, I;16, F, 1) -> replicated to 3 channels;
* 16-bit PNG (grey or RGB) -> ``round(v * 255 / 65535)``: the correct full-range rescale
  (PIL's own ``convert`` clips 16-bit grey at 255 and truncates 16-bit RGB to the high byte);
  16-bit colour PNGs are decoded with ``torchvision.io.decode_png`` which keeps all 16 bits;
* palette (P) -> expanded through the palette;
* alpha (RGBA, LA, PA, P with transparency) -> **composited on white**. Alpha is rare in
  generated images and a transparent background shows as white on the rating page; dropping
  alpha instead would expose whatever colour the encoder left in fully transparent pixels;
* CMYK/YCbCr -> RGB via PIL; EXIF orientation is applied (as a browser shows the image).

Decompression bombs: images with more than ``max_pixels`` pixels (default
``PIL.Image.MAX_IMAGE_PIXELS``, ~89 Mpx) are refused from the header, before decoding.
Anything PIL cannot decode raises :class:`ImageDecodeError` naming the file.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

Source = str | Path | bytes
T = TypeVar("T")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageDecodeError(ValueError):
    """An image could not be decoded; the message names the file (or ``<bytes #i>``)."""


def _name(source: Source, index: int | None = None) -> str:
    if isinstance(source, bytes | bytearray):
        return f"<bytes #{index}>" if index is not None else "<bytes>"
    return str(source)


def _read(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    with open(source, "rb") as fh:
        return fh.read()


def _png_bit_depth(data: bytes) -> int | None:
    # IHDR is always the first chunk: 8 signature + 4 length + 4 "IHDR" + 8 size, then depth.
    if data[:8] == _PNG_SIGNATURE and len(data) > 25 and data[12:16] == b"IHDR":
        return data[24]
    return None


def _scale16(a: np.ndarray) -> np.ndarray:
    # Maps 0..65535 onto 0..255 with rounding, i.e. v/257 rounded.
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.repeat(_scale16(np.asarray(im))[..., None], 3, axis=2)
    if mode == "I":  # 32-bit int: in practice 16-bit grey PNGs
        a = np.asarray(im).astype(np.int64)
        a = _scale16(np.clip(a, 0, 65535)) if a.max() > 255 else a.astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "F":  # float images: assume 0..255 as PIL does
        a = np.clip(np.rint(np.asarray(im)), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        im = _composite_on_white(im)
    elif mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def decode_image(
    source: Source, *, max_pixels: int | None = None, name: str | None = None
) -> Tensor:
    """Decode one image (path or bytes) to a uint8 RGB tensor of shape (3,H,W).

    Raises ImageDecodeError (naming the file) for corrupt/unsupported data or images larger
    than ``max_pixels`` (default ``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    label = name or _name(source)
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    try:
        data = _read(source)
    except OSError as exc:
        raise ImageDecodeError(f"cannot read image {label}: {exc}") from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if limit is not None and w * h > limit:
                raise ImageDecodeError(
                    f"image {label} is {w}x{h} = {w * h} pixels, above the {limit}-pixel limit "
                    "(decompression-bomb guard)"
                )
            if _png_bit_depth(data) == 16 and im.mode not in ("I;16", "I;16B", "I", "LA"):
                return _decode_png16_rgb(data, label)
            im = ImageOps.exif_transpose(im)
            arr = _pil_to_rgb(im)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image {label} refused as a decompression bomb: {exc}") from exc
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for bad data
        raise ImageDecodeError(f"cannot decode image {label}: {exc}") from exc
    if not arr.flags.writeable:  # PIL hands out read-only buffers; torch wants writable ones
        arr = arr.copy()
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _decode_png16_rgb(data: bytes, label: str) -> Tensor:
    """16-bit colour PNG (PIL would drop the low byte) -> uint8 RGB via torchvision."""
    import warnings

    from torchvision.io import ImageReadMode, decode_png

    try:
        with warnings.catch_warnings():
            # torchvision 0.29 deprecates its decoders in favour of torchcodec; PIL cannot
            # read 16-bit colour losslessly, so keep using it until torchcodec is a dependency.
            warnings.simplefilter("ignore", DeprecationWarning)
            raw = decode_png(
                torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.RGB_ALPHA
            )
    except Exception as exc:
        raise ImageDecodeError(f"cannot decode 16-bit PNG {label}: {exc}") from exc
    full_scale = 65535.0 if raw.dtype == torch.uint16 else 255.0
    a = raw.to(torch.float64) / full_scale  # (4,H,W) in [0,1]
    rgb, alpha = a[:3], a[3:4]
    rgb = rgb * alpha + (1.0 - alpha)  # composite on white, as for 8-bit images
    return torch.round(rgb * 255).clamp(0, 255).to(torch.uint8)


def default_num_threads() -> int:
    """Decoder threads: one per core, at least 2 (decode overlaps with inference)."""
    return max(2, min(8, os.cpu_count() or 2))


def iter_decoded(
    sources: Sequence[Source],
    transform: Callable[[Tensor], T] | None = None,
    *,
    num_threads: int | None = None,
    prefetch: int | None = None,
    max_pixels: int | None = None,
) -> Iterator[T]:
    """Yield ``transform(decode_image(s))`` for each source, in order, decoded on threads.

    At most ``prefetch`` (default 4 x threads) images are in flight, bounding memory. The
    transform (e.g. the backbone's resize) runs in the worker thread too.
    """
    threads = num_threads or default_num_threads()
    window = prefetch or 4 * threads
    fn = transform or (lambda t: t)

    def work(i: int) -> T:
        src = sources[i]
        return fn(decode_image(src, max_pixels=max_pixels, name=_name(src, i)))

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="evalhub-decode") as pool:
        queue: deque[Future[T]] = deque()
        next_i = 0
        while next_i < len(sources) and len(queue) < window:
            queue.append(pool.submit(work, next_i))
            next_i += 1
        while queue:
            result = queue.popleft().result()
            if next_i < len(sources):
                queue.append(pool.submit(work, next_i))
                next_i += 1
            yield result


def decode_many(
    sources: Sequence[Source], *, num_threads: int | None = None, max_pixels: int | None = None
) -> list[Tensor]:
    """Decode all sources on a thread pool; list of uint8 (3,H,W) tensors in input order."""
    return list(iter_decoded(sources, num_threads=num_threads, max_pixels=max_pixels))
