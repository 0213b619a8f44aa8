"""Derivatives of images that get tiles (over 4096 px on a side) are reduced: the rating and
gallery pages open such images tile by tile, so the derivative only has to serve thumbnails and
downloads, and making it at full resolution cost a worker 3.1 GB for a 16K WebP. Reduced by an
integer factor (box average) from the same bounded decode as the tiles; still re-encoded pixels
with no metadata, in the one encoding of every derivative (lossless WebP)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from evalhub.blobs import display
from evalhub.blobs.display import (
    DISPLAY_MAX_SIDE,
    reduce_factor,
    reduce_in_strips,
    render_display,
)
from evalhub.blobs.tiles import TILE_MIN_SIDE_PX
from tests.blobs.pictures import encoded, opened

SECRET = "secret-model"
WIDE = (4200, 100)  # over 4096 px: reduced by 2 to 2100 x 50


@pytest.fixture(autouse=True)
def thin_strips(monkeypatch):
    """Strips of 16 output rows, so the small test images are reduced in several strips."""
    monkeypatch.setattr(display, "REDUCE_STRIP_ROWS", 16)


def _picture(size=WIDE, mode="RGB", seed=0, noise=20.0) -> PILImage.Image:
    """Noise over gradients, so that any misplaced block or strip changes the result."""
    width, height = size
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 200, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 200, height)[:, None].repeat(width, 1)
    channels = [x, y, (x + y) / 2, 255 - y / 2][:len(mode)]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, noise, (height, width, len(mode)))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return PILImage.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)


def test_the_reduction_threshold_is_the_tiling_threshold():
    assert DISPLAY_MAX_SIDE == TILE_MIN_SIDE_PX


def test_the_factor_is_the_smallest_that_brings_the_long_side_to_the_limit():
    assert reduce_factor(4096, 4096) == 1
    assert reduce_factor(300, 4097) == 2
    assert reduce_factor(8192, 100) == 2
    assert reduce_factor(8193, 100) == 3
    assert reduce_factor(15360, 8640) == 4  # 3840 x 2160


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
@pytest.mark.parametrize("size", [(101, 67), (96, 64)])
def test_reducing_in_strips_equals_reducing_the_whole_image(mode, size):
    img = _picture(size, mode, seed=1)
    for factor in (2, 3):
        reduced = reduce_in_strips(img, factor)
        assert reduced.mode == mode
        assert reduced.tobytes() == img.reduce(factor).tobytes()


def test_a_png_over_the_limit_is_reduced_losslessly_without_its_text():
    from PIL import PngImagePlugin

    source = _picture(seed=3)
    info = PngImagePlugin.PngInfo()
    info.add_text("Model", SECRET)
    data, fmt = render_display(encoded(source, "PNG", pnginfo=info))
    assert fmt.extension == "webp" and SECRET.encode() not in data
    shown = opened(data)
    assert shown.size == (2100, 50) and shown.mode == "RGB"
    assert shown.tobytes() == source.reduce(2).tobytes()


def test_a_lossless_webp_over_the_limit_stays_lossless_opaque_and_without_exif():
    """Decoded by libwebp into one buffer (RGBA), as the tiles are; an opaque file gives an
    opaque RGB derivative."""
    exif = PILImage.Exif()
    exif[0x0110] = SECRET
    source = _picture(seed=4, noise=3.0)
    data, fmt = render_display(encoded(source, "WEBP", lossless=True, method=0, exif=exif))
    assert fmt.extension == "webp" and SECRET.encode() not in data and b"EXIF" not in data
    shown = opened(data)
    assert shown.mode == "RGB" and shown.size == (2100, 50)
    assert shown.tobytes() == source.reduce(2).tobytes()


def test_a_transparent_webp_over_the_limit_keeps_its_alpha_averaged_premultiplied():
    source = _picture(mode="RGBA", seed=5, noise=3.0)
    data, _ = render_display(encoded(source, "WEBP", lossless=True, exact=True, method=0))
    shown = opened(data)
    assert shown.mode == "RGBA" and shown.size == (2100, 50)
    expected = np.asarray(source.reduce(2), dtype=int)  # Pillow premultiplies RGBA to reduce
    assert np.abs(np.asarray(shown, dtype=int) - expected).max() <= 1


def test_a_lossy_webp_over_the_limit_is_reduced_and_reencoded_losslessly():
    source = _picture(seed=6, noise=3.0)  # photograph-like: lossy codecs keep it close
    data, fmt = render_display(encoded(source, "WEBP", quality=90))
    shown = opened(data)
    assert fmt.extension == "webp" and shown.mode == "RGB" and shown.size == (2100, 50)
    decoded = opened(encoded(source, "WEBP", quality=90)).convert("RGB").reduce(2)
    # The decoded pixels reduced (libwebp's RGBA, reduced premultiplied: within rounding).
    assert np.abs(np.asarray(shown, dtype=int) - np.asarray(decoded, dtype=int)).max() <= 1


def test_a_jpeg_over_the_limit_is_reduced_and_its_exif_orientation_applied():
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x0110] = SECRET
    source = _picture(seed=7, noise=3.0)
    data, fmt = render_display(encoded(source, "JPEG", quality=92, exif=exif))
    assert fmt.extension == "webp" and SECRET.encode() not in data
    shown = opened(data)
    assert shown.size == (50, 2100) and not shown.getexif()
    decoded = opened(encoded(source, "JPEG", quality=92)).transpose(
        PILImage.Transpose.ROTATE_270).reduce(2)
    error = np.abs(np.asarray(shown, dtype=int) - np.asarray(decoded, dtype=int)).mean()
    assert error < 3


def test_images_at_the_limit_keep_their_size():
    source = _picture((DISPLAY_MAX_SIDE, 40), seed=8)
    data, _ = render_display(encoded(source, "PNG"))
    assert opened(data).tobytes() == source.tobytes()



def test_a_block_holding_a_transparent_pixel_stays_transparent_when_reduced():
    """The box average rounds a block of alphas 254 and 255 up to 255; a transparent picture's
    derivative would then be opaque (and its tiles, cut at full resolution, not). Such a block
    keeps alpha 254; every other pixel is the plain box average."""
    img = _picture((101, 67), "RGB").convert("RGBA")
    for corner in ((50, 40), (100, 66)):  # inside, and in the last, partial block
        img.putpixel(corner, (*img.getpixel(corner)[:3], 254))
    plain = img.reduce(3)
    kept = reduce_in_strips(img, 3, keep_transparent=True)
    expected = np.array(plain.getchannel("A"))
    assert expected.min() == 255
    expected[40 // 3, 50 // 3] = expected[66 // 3, 100 // 3] = 254
    assert np.array_equal(np.asarray(kept.getchannel("A")), expected)
    assert np.array_equal(np.asarray(kept.convert("RGB")), np.asarray(plain.convert("RGB")))
