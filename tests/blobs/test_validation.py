"""What counts as an acceptable image, decided before anything is stored."""

import io
import struct
import zlib

import pytest
from PIL import Image

from evalhub.blobs.validation import InvalidImage, inspect_image
from tests.factories import png_bytes

LIMITS = {"max_pixels": 4096 * 4096, "max_bytes": 10_000_000}


def test_a_valid_png_is_described_by_its_header_and_hash():
    data = png_bytes(size=(40, 30))
    info = inspect_image(data, name="a.png", **LIMITS)
    assert (info.format, info.width, info.height, info.mode) == ("PNG", 40, 30, "RGB")
    assert len(info.sha256) == 64
    assert info.size_bytes == len(data)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_grayscale_alpha_16_bit_and_palette_images_are_accepted(mode):
    img = Image.new(mode, (8, 8))
    out = io.BytesIO()
    img.save(out, format="PNG")
    assert inspect_image(out.getvalue(), name="m.png", **LIMITS).mode == mode


def test_an_empty_file_is_refused():
    with pytest.raises(InvalidImage, match=r"empty\.png: file is empty"):
        inspect_image(b"", name="empty.png", **LIMITS)


def test_text_with_an_image_extension_is_refused():
    with pytest.raises(InvalidImage, match=r"notes\.png: not an image"):
        inspect_image(b"hello, I am not a picture", name="notes.png", **LIMITS)


def test_a_truncated_image_is_refused():
    data = png_bytes(size=(256, 256), color=(1, 2, 3))
    noisy = Image.effect_noise((256, 256), 60).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, format="JPEG", quality=95)
    truncated = out.getvalue()[: len(out.getvalue()) // 2]
    with pytest.raises(InvalidImage, match="truncated"):
        inspect_image(truncated, name="half.jpg", **LIMITS)
    assert inspect_image(data, name="whole.png", **LIMITS)


def test_a_floating_point_tiff_is_refused_rather_than_shown_black():
    out = io.BytesIO()
    Image.new("F", (8, 8), 0.5).save(out, format="TIFF")
    with pytest.raises(InvalidImage, match=r"float\.tif: 32-bit floating-point pixels"):
        inspect_image(out.getvalue(), name="float.tif", **LIMITS)


def test_a_tiff_cut_short_is_called_damaged_not_a_non_image():
    # A compressed TIFF keeps its directory at the end: cut short, Pillow cannot even name the
    # format.
    out = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(out, format="TIFF",
                                                          compression="tiff_deflate")
    with pytest.raises(InvalidImage, match=r"cut\.tif: truncated or damaged TIFF file"):
        inspect_image(out.getvalue()[:2000], name="cut.tif", **LIMITS)


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: the shape of a decompression bomb."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header():
    with pytest.raises(InvalidImage, match="decompression bomb"):
        inspect_image(_png_header_claiming(60000, 60000), name="bomb.png", **LIMITS)


@pytest.mark.parametrize("width, height", [(5000, 4000), (60000, 60000)])
def test_a_bomb_refusal_names_the_dimensions_and_the_limit(width, height, monkeypatch):
    """Whichever guard sees it first: ours, or Pillow's (which refuses before anyone learns
    the size) at the same limit, as the app sets it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMITS["max_pixels"])
    with pytest.raises(InvalidImage) as refused:
        inspect_image(_png_header_claiming(width, height), name="bomb.png", **LIMITS)
    message = str(refused.value)
    assert message.startswith(f"bomb.png: {width} x {height} = {width * height:,} pixels")
    assert "limit of 16,777,216 pixels, 4096 x 4096" in message
    assert "decompression bomb" in message


def test_a_file_over_the_byte_limit_is_refused():
    with pytest.raises(InvalidImage, match="exceeds the limit"):
        inspect_image(png_bytes(), name="big.png", max_pixels=10**8, max_bytes=10)


@pytest.mark.parametrize(("orientation", "shown"), [(1, (60, 40)), (3, (60, 40)),
                                                    (6, (40, 60)), (8, (40, 60)),
                                                    (5, (40, 60)), (7, (40, 60))])
def test_width_and_height_are_the_picture_as_shown_with_its_exif_orientation(orientation,
                                                                             shown):
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.new("RGB", (60, 40), "teal").save(out, format="JPEG", exif=exif)
    info = inspect_image(out.getvalue(), name="phone.jpg", max_pixels=10**6,
                         max_bytes=10**6)
    assert (info.width, info.height) == shown
