"""An annotator cannot tell runs apart by how their images are encoded: every display derivative
is lossless WebP of the pixels a browser shows, 8-bit RGB (RGBA only when some pixel is
transparent), whatever the original's format, quality, quantisation tables, chroma subsampling,
bit depth or mode; its URL and Content-Type are the same for every image. Tiles are JPEG for
opaque pixels and WebP for transparent ones, decided on the pixels, never on the file's mode.
Derivatives and pyramids written under the earlier rule (the original's format kept) are
rewritten."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations import RunPython
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from PIL import Image as PILImage

from evalhub.blobs.display import (
    DISPLAY_SYNC_MAX_PIXELS,
    blob_display_path,
    blob_make_display,
    render_display,
)
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import project_display_name
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tasks import blobs_build_tiles, blobs_make_displays
from evalhub.blobs.tiles import blob_build_tiles, dzi_path, tile_path
from evalhub.blobs.views import display_url
from evalhub.campaigns.serving.payloads import image_payload
from evalhub.projects.models import Role
from tests.blobs.pictures import encoded, opened, photo
from tests.factories import ImageFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _jpeg_q73() -> bytes:
    """What one pipeline writes: JPEG at quality 73 with 4:2:0 chroma subsampling."""
    return encoded(photo(seed=1), "JPEG", quality=73, subsampling=2)


# ---------------------------------------------------------------- one encoding for every image


def test_a_jpeg_and_a_png_of_the_same_pixels_give_the_same_derivative():
    jpeg = _jpeg_q73()
    assert opened(jpeg).quantization  # the tables a derivative must not carry on
    png = encoded(opened(jpeg), "PNG")  # another pipeline: the same pixels, saved as PNG
    from_jpeg, jpeg_format = render_display(jpeg)
    from_png, png_format = render_display(png)
    assert jpeg_format == png_format
    assert (jpeg_format.extension, jpeg_format.content_type) == ("webp", "image/webp")
    assert from_jpeg == from_png  # nothing but the pixels differs, and they do not
    shown = opened(from_jpeg)
    assert shown.format == "WEBP" and shown.mode == "RGB"
    assert not getattr(shown, "quantization", None)


def test_jpegs_of_different_quality_and_subsampling_give_the_same_encoding():
    source = photo(seed=2)
    shown = [opened(render_display(encoded(source, "JPEG", **options))[0]) for options in (
        {"quality": 73, "subsampling": 2}, {"quality": 95, "subsampling": 0},
        {"quality": 50, "subsampling": 1})]
    assert {(img.format, img.mode) for img in shown} == {("WEBP", "RGB")}
    assert not any(getattr(img, "quantization", None) for img in shown)


def _grey16() -> PILImage.Image:
    values = np.random.default_rng(3).integers(0, 65536, (40, 50), dtype=np.uint16)
    return PILImage.fromarray(values)


def _palette() -> PILImage.Image:
    return photo((50, 40), seed=4).quantize(colors=16)


@pytest.mark.parametrize(("name", "original", "expected"), [
    ("opaque RGBA", lambda: photo((50, 40)).convert("RGBA"),
     lambda img: img.convert("RGB")),
    ("16-bit grey", _grey16,
     lambda img: PILImage.fromarray((np.asarray(img) >> 8).astype(np.uint8)).convert("RGB")),
    ("palette", _palette, lambda img: img.convert("RGB")),
    ("8-bit grey", lambda: photo((50, 40)).convert("L"), lambda img: img.convert("RGB")),
    ("opaque grey and alpha", lambda: photo((50, 40)).convert("LA"),
     lambda img: img.convert("RGB")),
])
def test_modes_without_transparent_pixels_become_eight_bit_rgb(name, original, expected):
    img = original()
    data, fmt = render_display(encoded(img, "PNG"))
    shown = opened(data)
    assert (fmt.extension, shown.format, shown.mode) == ("webp", "WEBP", "RGB"), name
    assert shown.tobytes() == expected(img).tobytes(), name


def test_an_opaque_rgba_webp_becomes_rgb_like_any_other():
    data, _ = render_display(encoded(photo().convert("RGBA"), "WEBP", lossless=True))
    assert opened(data).mode == "RGB"


def _transparent_rgba() -> PILImage.Image:
    img = photo((50, 40)).convert("RGBA")
    img.putpixel((3, 3), (200, 100, 50, 128))
    img.putpixel((4, 3), (10, 20, 30, 0))
    return img


def _transparent_palette() -> PILImage.Image:
    img = _palette()
    img.info["transparency"] = 0
    return img


@pytest.mark.parametrize(("name", "original"), [
    ("RGBA", _transparent_rgba),
    ("palette with a transparent entry", _transparent_palette),
    ("grey and alpha", lambda: _transparent_rgba().convert("LA")),
])
def test_transparent_pixels_keep_their_alpha_exactly(name, original):
    img = original()
    data, fmt = render_display(encoded(img, "PNG", **(
        {"transparency": 0} if img.mode == "P" else {})))
    shown = opened(data)
    assert (fmt.extension, shown.format, shown.mode) == ("webp", "WEBP", "RGBA"), name
    assert shown.tobytes() == img.convert("RGBA").tobytes(), name


def test_a_sixteen_bit_grey_pngs_transparent_key_becomes_alpha_as_a_browser_shows_it():
    values = (np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) * 13) % 65535
    values[10:20, 30:40] = 12345
    original = PILImage.fromarray(values.astype(np.uint16))  # mode I;16
    data, _ = render_display(encoded(original, "PNG", transparency=12345))
    shown = opened(data)
    assert shown.mode == "RGBA"
    alpha = np.asarray(shown)[..., 3]
    assert (alpha == 0).sum() == 100 and (alpha[10:20, 30:40] == 0).all()
    grey = np.asarray(shown)[..., 0]
    opaque = alpha == 255
    assert (grey[opaque] == (values[opaque] // 256)).all()


@pytest.mark.parametrize(("fmt", "options"), [
    ("JPEG", {"quality": 73, "subsampling": 2}),
    ("JPEG", {"quality": 95, "subsampling": 0}),
    ("WEBP", {"quality": 60}),
    ("PNG", {}), ("TIFF", {}), ("BMP", {}),
])
def test_the_derivative_holds_the_originals_decoded_pixels_losslessly(fmt, options):
    original = encoded(photo(seed=5), fmt, **options)
    data, _ = render_display(original)
    assert np.array_equal(np.asarray(opened(data)),
                          np.asarray(opened(original).convert("RGB")))


def test_an_image_over_the_limit_is_reduced_into_the_same_encoding():
    source = photo((4200, 40), seed=6)
    shown = [opened(render_display(encoded(source, fmt, **options))[0]) for fmt, options in (
        ("JPEG", {"quality": 73, "subsampling": 2}), ("PNG", {}),
        ("WEBP", {"quality": 80}))]
    assert {(img.format, img.mode, img.size) for img in shown} == {("WEBP", "RGB", (2100, 20))}


# ---------------------------------------------------------------- what the annotator receives


def _member_of(image) -> object:
    return MembershipFactory(project=image.run.project, role=Role.ANNOTATOR).user


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_url_and_content_type_are_the_same_for_a_jpeg_and_a_png_run(client):
    jpeg = _jpeg_q73()
    first = ImageFactory(blob=blob_store_bytes(jpeg, name="a.jpg"))
    second = ImageFactory(blob=blob_store_bytes(encoded(photo(seed=7), "PNG"), name="b.png"),
                          run=first.run)
    client.force_login(_member_of(first))
    answers = []
    for image in (first, second):
        url = image_payload(image.blob, project_id=image.run.project_id)["url"]
        assert url == display_url(image.blob, image.run.project_id)
        response = client.get(url)
        assert response.status_code == 200
        shown = opened(_body(response))
        answers.append((url.rsplit(".", 1)[1], response["Content-Type"], shown.format,
                        shown.mode, getattr(shown, "quantization", None)))
    assert answers[0] == answers[1] == ("webp", "image/webp", "WEBP", "RGB", None)


# ---------------------------------------------------------------- tiles


def _large(fmt: str, mode: str = "RGB", **options) -> bytes:
    img = photo((4200, 300), seed=8)
    if mode == "RGBA-transparent":
        img = img.convert("RGBA")
        img.putpixel((10, 10), (1, 2, 3, 0))
    elif mode != "RGB":
        img = img.convert(mode)
    return encoded(img, fmt, **options)


def _tile_of(blob: ImageBlob) -> PILImage.Image:
    with default_storage.open(tile_path(blob.sha256, 13, 0, 0, blob.tiles_format), "rb") as f:
        return opened(f.read())


def test_tiles_of_a_jpeg_and_a_png_original_have_the_same_format():
    jpeg = blob_store_bytes(_large("JPEG", quality=73, subsampling=2), name="large.jpg")
    png = blob_store_bytes(_large("PNG"), name="large.png")
    for blob in (jpeg, png):
        assert blob_build_tiles(blob)
    shown = []
    for blob in (jpeg, png):
        blob.refresh_from_db()
        pyramid = image_payload(blob, project_id=1)["pyramid"]
        descriptor = default_storage.open(dzi_path(blob.sha256)).read()
        tile = _tile_of(blob)
        shown.append((blob.tiles_format, pyramid["format"], tile.format, tile.mode))
        assert f'Format="{blob.tiles_format}"'.encode() in descriptor
    assert shown[0] == shown[1] == ("jpeg", "jpeg", "JPEG", "RGB")


@pytest.mark.parametrize(("name", "mode", "expected"), [
    ("opaque RGBA", "RGBA", ("jpeg", "JPEG", "RGB")),
    ("grey", "L", ("jpeg", "JPEG", "RGB")),
    ("transparent RGBA", "RGBA-transparent", ("webp", "WEBP", "RGBA")),
])
def test_the_tile_format_follows_the_pixels_transparency_not_the_files_mode(
        name, mode, expected):
    blob = blob_store_bytes(_large("PNG", mode), name=f"{name}.png")
    assert blob_build_tiles(blob)
    blob.refresh_from_db()
    tile = _tile_of(blob)
    assert (blob.tiles_format, tile.format, tile.mode) == expected, name
    assert image_payload(blob, project_id=1)["pyramid"]["format"] == expected[0]


def test_a_pyramid_not_built_yet_is_opened_through_its_descriptor():
    """Its format is known once the build has seen the pixels: the payload gives no pyramid,
    and the page asks the descriptor (503 until a worker has built it)."""
    blob = blob_store_bytes(_large("PNG"), name="large.png")
    payload = image_payload(blob, project_id=1)
    assert payload["tiles"] and payload["pyramid"] is None


def test_pyramids_built_by_the_old_rule_are_rebuilt_unless_they_were_of_rgb_files():
    """The old rule chose the tiles' format from the file's mode (WebP for any mode with
    alpha, one-channel JPEG for grey): those pyramids are forgotten, so that the existing path
    (campaign preparation, the descriptor view) queues their rebuild; an RGB file's tiles were
    JPEG of its RGB pixels, what the new rule writes, and are kept."""
    migration = importlib.import_module("evalhub.blobs.migrations.0008_forget_old_pyramids")
    built = timezone.now()
    blobs = {mode: blob_store_bytes(_large("PNG", mode), name=f"{mode}.png")
             for mode in ("RGB", "RGBA", "L")}
    ImageBlob.objects.filter(pk__in=[b.pk for b in blobs.values()]).update(tiles_built_at=built)
    small = blob_store_bytes(encoded(photo(), "PNG"), name="small.png")
    migration.forget_pyramids_of_the_old_rule(apps, None)
    rows = {b.mode: b for b in ImageBlob.objects.filter(pk__in=[b.pk for b in blobs.values()])}
    assert (rows["RGB"].tiles_built_at, rows["RGB"].tiles_format) == (built, "jpeg")
    for mode in ("RGBA", "L"):
        assert (rows[mode].tiles_built_at, rows[mode].tiles_format) == (None, "")
    assert ImageBlob.objects.get(pk=small.pk).tiles_format == ""
    assert blob_build_tiles(rows["RGBA"])  # rebuilt under the new rule
    assert ImageBlob.objects.get(pk=rows["RGBA"].pk).tiles_format == "jpeg"


def test_the_schema_change_and_the_data_step_are_separate_migrations():
    """``blobs 0007`` alters the table (an exclusive lock, held until its transaction ends)
    and does nothing else; ``0008`` scans the table in its own transaction, which takes only
    row locks, so media, tiles and rating requests go on meanwhile."""
    schema = importlib.import_module("evalhub.blobs.migrations.0007_tiles_format_from_pixels")
    data = importlib.import_module("evalhub.blobs.migrations.0008_forget_old_pyramids")
    assert not any(isinstance(op, RunPython) for op in schema.Migration.operations)
    assert [type(op) for op in data.Migration.operations] == [RunPython]
    assert data.Migration.dependencies == [("blobs", "0007_tiles_format_from_pixels")]


def test_the_previous_release_still_stores_images_while_it_runs_beside_the_new_one():
    """During a deploy, web processes and workers of the previous release insert blobs
    without the new column: the database gives it its default (a NOT NULL column without
    one refused every import)."""
    before = MigrationLoader(connection).project_state(
        ("blobs", "0006_internal_storage_names")).apps.get_model("blobs", "ImageBlob")
    row = before.objects.create(sha256="a" * 64, file="blobs/a.png", format="PNG", width=8,
                                height=8, mode="RGB", size_bytes=10, display_token="b" * 64)
    assert ImageBlob.objects.get(pk=row.pk).tiles_format == ""


def test_a_pyramid_a_worker_of_the_previous_release_built_is_built_again(
        client, sent_tasks, django_capture_on_commit_callbacks):
    """Such a worker, still running after the migration, records its pyramid (format chosen
    by the file's mode) without a format: it counts as not built, so the descriptor view and
    the campaign's preparation queue its rebuild, and the payload offers no pyramid until
    then."""
    image = ImageFactory(blob=blob_store_bytes(_large("PNG", "RGBA"), name="old-worker.png"))
    ImageBlob.objects.filter(pk=image.blob.pk).update(tiles_built_at=timezone.now())
    blob = ImageBlob.objects.get(pk=image.blob.pk)
    payload = image_payload(blob, project_id=image.run.project_id)
    assert payload["pyramid"] is None
    client.force_login(_member_of(image))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(payload["tiles"]).status_code == 503
    assert sent_tasks == [("evalhub.blobs.build_tiles", [[blob.pk]])]
    assert blobs_build_tiles([blob.pk]) == 1
    blob.refresh_from_db()
    assert blob.tiles_format == "jpeg"  # opaque pixels, whatever the file's mode
    assert client.get(payload["tiles"]).status_code == 200
    assert image_payload(blob, project_id=image.run.project_id)["pyramid"]["format"] == "jpeg"


def test_a_large_images_derivative_and_tiles_agree_on_a_barely_transparent_pixel():
    """Transparency is decided once, on the full-resolution pixels, for the derivative and the
    tiles alike: one pixel at alpha 254 in 8200 x 16 makes the derivative RGBA (though the
    3 x 3 box average that reduces it rounds that pixel's alpha back to 255) and the tiles
    WebP, so the tile format says what the derivative's mode says."""
    img = photo((8200, 16), seed=9).convert("RGBA")
    img.putpixel((100, 5), (10, 20, 30, 254))
    blob = blob_store_bytes(encoded(img, "PNG"), name="barely.png")
    assert blob_make_display(blob) and blob_build_tiles(blob)
    blob.refresh_from_db()
    with default_storage.open(blob.display.name, "rb") as handle:
        derivative = opened(handle.read())
    assert (derivative.size, derivative.mode, blob.tiles_format) == ((2734, 6), "RGBA", "webp")


# ---------------------------------------------------------------- derivatives of the old rule


def _stored_by_the_old_rule(blob: ImageBlob) -> str:
    """What the old rule left: a JPEG derivative with the original's tables, named ``.jpg``."""
    old = f"display/{blob.display_token[:2]}/{blob.display_token}.jpg"
    saved = default_storage.save(old, ContentFile(_jpeg_q73()))
    ImageBlob.objects.filter(pk=blob.pk).update(display=saved)
    blob.display = saved
    return saved


def test_a_derivative_of_the_old_rule_is_rewritten_on_its_first_request(client):
    image = ImageFactory(blob=blob_store_bytes(_jpeg_q73(), name="a.jpg"))
    old = _stored_by_the_old_rule(image.blob)
    client.force_login(_member_of(image))
    url = display_url(image.blob, image.run.project_id)
    assert url.endswith(".webp")
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert opened(_body(response)).format == "WEBP"
    image.blob.refresh_from_db()
    assert image.blob.display.name == blob_display_path(image.blob) != old
    assert not default_storage.exists(old)
    # The old URL (the original's extension) is gone with the rule.
    name = project_display_name(image.run.project_id, image.blob.pk)
    assert client.get(f"/media/display/{name}.jpg").status_code == 404


def test_a_large_derivative_of_the_old_rule_is_rewritten_by_the_worker(
        client, sent_tasks, django_capture_on_commit_callbacks):
    side = int(DISPLAY_SYNC_MAX_PIXELS ** 0.5) + 1
    data = encoded(PILImage.new("RGB", (side, side), (1, 2, 3)), "JPEG", quality=73)
    image = ImageFactory(blob=blob_store_bytes(data, name="large.jpg"))
    _stored_by_the_old_rule(image.blob)
    client.force_login(_member_of(image))
    url = display_url(image.blob, image.run.project_id)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.get(url)
        assert response.status_code == 503 and response["Retry-After"]
    # Queued once however often the page asks, by the task every import queues.
    assert sent_tasks == [("evalhub.blobs.make_displays", [[image.blob.pk]])]
    assert blobs_make_displays([image.blob.pk]) == 1
    assert blobs_make_displays([image.blob.pk]) == 0
    response = client.get(url)
    assert response.status_code == 200 and opened(_body(response)).format == "WEBP"


def test_the_worker_rewrites_an_old_rule_derivative_and_keeps_a_current_one():
    blob = blob_store_bytes(_jpeg_q73(), name="a.jpg")
    _stored_by_the_old_rule(blob)
    assert blob_make_display(blob) is True
    current = blob.display.name
    assert current == blob_display_path(blob) and current.endswith(".webp")
    assert blob_make_display(blob) is False
    assert ImageBlob.objects.get(pk=blob.pk).display.name == current
