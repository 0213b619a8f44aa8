"""DZI pyramids: geometry per the Deep Zoom spec, tile edges, idempotent builds (one at a time
per blob), access, and web views that never build."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image as PILImage

from evalhub.blobs.after_store import large_blob_ids
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import project_display_name
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tasks import blobs_build_tiles
from evalhub.blobs.tiles import (
    DZI_NS,
    TILE_MIN_SIDE_PX,
    Pyramid,
    TilesBusy,
    blob_build_tiles,
    dzi_path,
    needs_tiles,
    tile_path,
)
from evalhub.campaigns.serving.payloads import image_payload
from evalhub.projects.models import Role
from tests.factories import ImageFactory, MembershipFactory, UserFactory

W, H = 5000, 3000


def _gradient_png(width: int = W, height: int = H) -> bytes:
    """A picture whose pixels say where they are: red grows along x, green along y."""
    x = PILImage.linear_gradient("L").transpose(PILImage.Transpose.ROTATE_90).resize(
        (width, height))
    y = PILImage.linear_gradient("L").resize((width, height))
    img = PILImage.merge("RGB", (x, y, PILImage.new("L", (width, height), 90)))
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


@pytest.fixture(scope="module")
def large_png() -> bytes:
    return _gradient_png()


@pytest.fixture
def large_blob(db, large_png):
    return blob_store_bytes(large_png, name="large.png")


def _tile(sha: str, level: int, col: int, row: int) -> PILImage.Image:
    with default_storage.open(tile_path(sha, level, col, row, "jpeg"), "rb") as handle:
        img = PILImage.open(handle)
        img.load()
        return img


def test_the_page_is_offered_tiles_exactly_for_images_that_get_a_pyramid():
    for side in (TILE_MIN_SIDE_PX, TILE_MIN_SIDE_PX + 1):
        blob = ImageBlob(pk=1, sha256="ab" * 32, file="blobs/x.png", width=side, height=100)
        offered = image_payload(blob, project_id=1)["tiles"] is not None
        assert offered == needs_tiles(blob) == (side > TILE_MIN_SIDE_PX)


def test_levels_follow_the_dzi_formula():
    pyramid = Pyramid(W, H)
    assert pyramid.max_level == math.ceil(math.log2(5000)) == 13
    assert pyramid.level_size(13) == (5000, 3000)
    assert pyramid.level_size(12) == (2500, 1500)
    assert pyramid.level_size(11) == (1250, 750)
    assert pyramid.level_size(10) == (625, 375)
    assert pyramid.level_size(9) == (313, 188)  # ceil, not floor
    assert pyramid.level_size(0) == (1, 1)
    assert pyramid.grid(13) == (10, 6)  # ceil(5000/510), ceil(3000/510)
    assert pyramid.grid(0) == (1, 1)


def test_tile_boxes_overlap_by_one_pixel_inside_and_stop_at_the_edges():
    pyramid = Pyramid(W, H)
    assert pyramid.tile_box(13, 0, 0) == (0, 0, 511, 511)  # no overlap before the first tile
    assert pyramid.tile_box(13, 1, 1) == (509, 509, 1021, 1021)  # 1 px on each side
    assert pyramid.tile_box(13, 9, 5) == (4589, 2549, 5000, 3000)  # clipped at the edges


def test_a_build_writes_every_level_and_the_descriptor(large_blob):
    assert blob_build_tiles(large_blob) is True
    sha = large_blob.sha256
    root = ET.fromstring(default_storage.open(dzi_path(sha)).read())
    assert root.tag == f"{{{DZI_NS}}}Image"
    assert (root.get("TileSize"), root.get("Overlap"), root.get("Format")) == ("510", "1", "jpeg")
    size = root.find(f"{{{DZI_NS}}}Size")
    assert (size.get("Width"), size.get("Height")) == ("5000", "3000")
    pyramid = Pyramid(W, H)
    for level in range(pyramid.max_level + 1):
        cols, rows = pyramid.grid(level)
        _, files = default_storage.listdir(f"tiles/{sha}/image_files/{level}")
        whole = ["whole.jpeg"] if level in pyramid.whole_levels() else []
        assert sorted(files) == sorted(
            [f"{c}_{r}.jpeg" for c in range(cols) for r in range(rows)] + whole)
        for col, row in [(0, 0), (cols - 1, rows - 1)]:
            left, top, right, bottom = pyramid.tile_box(level, col, row)
            assert _tile(sha, level, col, row).size == (right - left, bottom - top)


def test_tiles_hold_the_right_pixels(large_blob):
    blob_build_tiles(large_blob)
    tile = _tile(large_blob.sha256, 13, 1, 1)  # starts at (509, 509) of the full image
    red, green, _ = tile.getpixel((0, 0))
    assert abs(red - 509 * 255 / W) < 4 and abs(green - 509 * 255 / H) < 4
    red, green, _ = _tile(large_blob.sha256, 13, 9, 5).getpixel((410, 450))  # (4999, 2999)
    assert red > 245 and green > 245


def test_a_built_pyramid_is_recorded_and_never_built_again(large_blob):
    assert large_blob.tiles_built_at is None
    assert blob_build_tiles(large_blob) is True
    large_blob.refresh_from_db()
    assert large_blob.tiles_built_at is not None and large_blob.tiles_claimed_until is None
    assert blob_build_tiles(large_blob) is False


def test_a_build_waits_while_another_holds_the_blob(large_blob):
    """One build at a time per blob, across processes and hosts: the claim is a row update."""
    held_until = timezone.now() + timedelta(minutes=5)
    ImageBlob.objects.filter(pk=large_blob.pk).update(tiles_claimed_until=held_until)
    with pytest.raises(TilesBusy) as busy:
        blob_build_tiles(large_blob)
    assert busy.value.until == held_until
    assert not default_storage.exists(dzi_path(large_blob.sha256))


def test_a_crashed_build_is_redone_once_its_claim_runs_out(large_blob):
    """A build that died half-way left tiles, no descriptor and a claim: the claim runs out,
    the next build wipes what it left and builds the whole pyramid."""
    ImageBlob.objects.filter(pk=large_blob.pk).update(
        tiles_claimed_until=timezone.now() - timedelta(seconds=1))
    stray = tile_path(large_blob.sha256, 13, 0, 0, "jpeg")
    default_storage.save(stray, io.BytesIO(b"half a tile"))
    assert blob_build_tiles(large_blob) is True
    assert _tile(large_blob.sha256, 13, 0, 0).size == (511, 511)
    assert ImageBlob.objects.get(pk=large_blob.pk).tiles_built_at is not None


def test_a_failed_build_releases_its_claim(large_blob, monkeypatch):
    from evalhub.blobs import tiles

    def crash(blob):
        raise OSError("disk full")

    monkeypatch.setattr(tiles, "_write_pyramid", crash)
    with pytest.raises(OSError):
        blob_build_tiles(large_blob)
    large_blob.refresh_from_db()
    assert large_blob.tiles_claimed_until is None and large_blob.tiles_built_at is None


def test_the_task_builds_only_large_blobs(db, large_blob):
    small = blob_store_bytes(_gradient_png(64, 64), name="small.png")
    assert large_blob_ids([small.pk, large_blob.pk]) == [large_blob.pk]
    assert blobs_build_tiles([small.pk, large_blob.pk]) == 1
    assert blobs_build_tiles([small.pk, large_blob.pk]) == 0
    assert not default_storage.exists(dzi_path(small.sha256))
    assert ImageBlob.objects.get(pk=small.pk).tiles_built_at is None


def test_the_task_tries_a_held_blob_again_later(large_blob):
    ImageBlob.objects.filter(pk=large_blob.pk).update(
        tiles_claimed_until=timezone.now() + timedelta(minutes=5))
    with pytest.raises(Retry):
        blobs_build_tiles.apply(args=[[large_blob.pk]], throw=True)


# ---------------------------------------------------------------- served over HTTP


@pytest.fixture
def member_and_image(db, large_blob):
    image = ImageFactory(blob=large_blob)
    member = MembershipFactory(project=image.run.project, role=Role.ANNOTATOR).user
    return member, image


def test_a_member_gets_the_descriptor_and_tiles(client, member_and_image):
    member, image = member_and_image
    blob_build_tiles(image.blob)
    client.force_login(member)
    payload = image_payload(image.blob, project_id=image.run.project_id)
    response = client.get(payload["tiles"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert b'Width="5000"' in b"".join(response.streaming_content)
    tile = client.get(payload["tiles"].replace(".dzi", "_files/13/9_5.jpeg"))
    assert tile.status_code == 200 and tile["Content-Type"] == "image/jpeg"
    assert "immutable" in tile["Cache-Control"]
    missing = client.get(payload["tiles"].replace(".dzi", "_files/13/99_5.jpeg"))
    assert missing.status_code == 404


def test_the_web_view_never_builds_a_missing_pyramid_it_queues_the_build(
        client, member_and_image, sent_tasks, django_capture_on_commit_callbacks):
    """A 16K build takes seconds and gigabytes: a web process answers 'preparing' at once
    (503, Retry-After), writes nothing and leaves the build to a worker."""
    member, image = member_and_image
    client.force_login(member)
    url = image_payload(image.blob, project_id=image.run.project_id)["tiles"]
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.get(url)
        assert response.status_code == 503
        assert response.json()["preparing"] is True
        assert int(response["Retry-After"]) > 0 and "no-store" in response["Cache-Control"]
    assert not default_storage.exists(f"tiles/{image.blob.sha256}")
    assert ImageBlob.objects.get(pk=image.blob.pk).tiles_claimed_until is None
    # Queued once however often the page asks (the worker's task is idempotent anyway).
    assert sent_tasks == [("evalhub.blobs.build_tiles", [[image.blob.pk]])]
    assert client.get(url.replace(".dzi", "_files/13/0_0.jpeg")).status_code == 404


def test_outsiders_and_anonymous_users_get_404(client, member_and_image, sent_tasks,
                                               django_capture_on_commit_callbacks):
    _, image = member_and_image
    token = image_payload(image.blob, project_id=image.run.project_id)["tiles"]
    with django_capture_on_commit_callbacks(execute=True):
        for url in (f"/rate/tiles/{image.blob.sha256}.dzi", token):
            assert client.get(url).status_code == 404
        client.force_login(UserFactory())
        assert client.get(token).status_code == 404
        assert client.get(token.replace(".dzi", "_files/0/0_0.jpeg")).status_code == 404
    assert sent_tasks == []  # nothing queued for them either


def test_small_images_have_no_tiles(client, db):
    image = ImageFactory()
    client.force_login(MembershipFactory(project=image.run.project).user)
    name = project_display_name(image.run.project_id, image.blob.pk)
    assert client.get(f"/rate/tiles/{name}.dzi").status_code == 404


def test_a_webp_pyramid_is_decoded_into_one_buffer_and_cut_as_jpeg_tiles(db):
    """libwebp decodes a still WebP straight into one RGBA buffer (blobs/webp.py: Pillow's
    decoder held four copies of a 16K image); an opaque one still gets JPEG tiles with its
    pixels, as Pillow decodes them."""
    source = PILImage.open(io.BytesIO(_gradient_png(4200, 300))).convert("RGB")
    out = io.BytesIO()
    source.save(out, format="WEBP", lossless=True)
    blob = blob_store_bytes(out.getvalue(), name="wide.webp")
    assert blob_build_tiles(blob)
    root = ET.fromstring(default_storage.open(dzi_path(blob.sha256)).read())
    assert root.get("Format") == "jpeg"
    tile = _tile(blob.sha256, 13, 2, 0)  # starts at (1019, 0)
    assert tile.mode == "RGB" and tile.size == (512, 300)
    expected = source.getpixel((1019 + 100, 200))
    assert max(abs(a - b) for a, b in zip(tile.getpixel((100, 200)), expected, strict=True)) < 6
    half = _tile(blob.sha256, 12, 0, 0)  # level 12: 2100 x 150, halved without premultiplying
    assert half.size == (511, 150)
