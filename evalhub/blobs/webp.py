"""Decode a still WebP image straight into one pixel buffer (for 16K tiles).

Pillow decodes every WebP through libwebp's animation decoder, which keeps two full canvases
and hands Pillow a copy that is then unpacked into the image: four buffers of 4 bytes per
pixel, 2.2 GB of peak memory for one 15360 x 8640 image (bench/tiles.py). libwebp's simple API
``WebPDecodeRGBAInto`` writes the pixels into a buffer the caller gives, which Pillow then
wraps without copying (``Image.frombuffer``): one buffer (530 MB at 16K). The library is the
libwebp Pillow's wheel carries (or the system's); when none is found, or the file is animated
or unreadable this way, callers fall back to Pillow's own decoder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

import PIL
from PIL import Image


@functools.cache
def _libwebp() -> ctypes.CDLL | None:
    bundled = sorted((Path(PIL.__file__).parent.parent / "pillow.libs").glob("libwebp-*.so*"))
    for candidate in [*map(str, bundled), ctypes.util.find_library("webp")]:
        if not candidate:
            continue
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        lib.WebPGetInfo.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                    ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
        lib.WebPGetInfo.restype = ctypes.c_int
        lib.WebPDecodeRGBAInto.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                           ctypes.c_size_t, ctypes.c_int]
        lib.WebPDecodeRGBAInto.restype = ctypes.c_void_p
        return lib
    return None


def decode_rgba(data: bytes) -> Image.Image | None:
    """The still WebP ``data`` as an RGBA image over one buffer (alpha 255 where the file has
    none), or None when this way cannot decode it (no libwebp, animation, bad data)."""
    lib = _libwebp()
    if lib is None:
        return None
    width, height = ctypes.c_int(), ctypes.c_int()
    if not lib.WebPGetInfo(data, len(data), ctypes.byref(width), ctypes.byref(height)):
        return None
    size = (width.value, height.value)
    pixels = bytearray(size[0] * size[1] * 4)
    target = (ctypes.c_uint8 * len(pixels)).from_buffer(pixels)
    if not lib.WebPDecodeRGBAInto(data, len(data), ctypes.addressof(target), len(pixels),
                                  size[0] * 4):
        return None
    del target  # the image below keeps the buffer alive
    return Image.frombuffer("RGBA", size, pixels, "raw", "RGBA", 0, 1)
