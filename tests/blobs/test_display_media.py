"""Annotators see pixels, nothing else: imported files carrying identifying metadata reach an
annotator only as EvalHub's own re-encoded derivative (lossless WebP of the decoded pixels,
the same encoding for every image: tests/blobs/test_display_uniform.py), under an opaque name,
through one access-checked media view; originals stay with scientists; everyone else gets
404."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from PIL import ImageCms, PngImagePlugin

from evalhub.blobs import tiles
from evalhub.blobs.display import DISPLAY_SYNC_MAX_PIXELS, blob_make_display, render_display
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import display_token, project_display_name
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tasks import blobs_make_displays
from evalhub.campaigns.services import campaign_create
from evalhub.projects.models import Role
from evalhub.runs.models import GenerationRun, Image
from evalhub.runs.tasks import runs_make_previews
from tests.blobs.pictures import photo
from tests.factories import (
    CheckpointFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
)
from tests.runs.helpers import manifest_csv

pytestmark = pytest.mark.django_db

SECRET = b"secret-model"
PROMPT = "a red circle"
# A derivative is a simple lossless WebP: one image chunk, no VP8X header that could announce
# EXIF, XMP or ICC chunks (a PNG's tEXt, iTXt, eXIf, iCCP, tIME ... have nowhere to go).
WEBP_PIXEL_CHUNKS = [b"VP8L"]


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Model", f"{SECRET.decode()}, run 7")
    info.add_itxt("Comment", f"made by {SECRET.decode()}", zip=True)
    out = io.BytesIO()
    photo(seed=1).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    exif = PILImage.Exif()
    exif[0x0110] = SECRET.decode()  # Model
    exif[0x0131] = f"{SECRET.decode()} pipeline v3"  # Software
    exif[0x0132] = "2031:01:02 03:04:05"  # DateTime
    out = io.BytesIO()
    photo(seed=2).save(out, format="JPEG", quality=92, exif=exif,
                        comment=b"run 7 of " + SECRET)
    return out.getvalue()


def png_chunks(data: bytes) -> list[bytes]:
    """Chunk types of a PNG file, in order (8-byte signature, then length/type/data/CRC)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        chunks.append(data[offset + 4:offset + 8])
        offset += 12 + length
    return chunks


def webp_chunks(data: bytes) -> list[bytes]:
    """Chunk types of a WebP file, in order (``RIFF <size> WEBP``, then type/size/data)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, offset = [], 12
    while offset < len(data):
        (length,) = struct.unpack("<I", data[offset + 4:offset + 8])
        chunks.append(data[offset:offset + 4])
        offset += 8 + length + (length & 1)
    return chunks


def jpeg_markers(data: bytes) -> list[int]:
    """Marker bytes of a JPEG's header segments up to the start of scan."""
    assert data[:2] == b"\xff\xd8"
    markers, offset = [], 2
    while True:
        marker = data[offset + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return markers
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        offset += 2 + length


def _pixels(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# ---------------------------------------------------------------- a project, as users build it


class World:
    """Two runs whose images were imported through the API, a campaign over them, every role,
    and an outsider (owner of another project)."""

    def __init__(self, api):
        self.project = ProjectFactory()
        prompt_set = PromptSetFactory(project=self.project)
        PromptFactory(prompt_set=prompt_set, text=PROMPT, position=0)
        checkpoint = CheckpointFactory(model=GenModelFactory(project=self.project))
        self.scientist = MembershipFactory(project=self.project, role=Role.SCIENTIST).user
        self.annotator = MembershipFactory(project=self.project, role=Role.ANNOTATOR).user
        self.outsider = MembershipFactory(role=Role.OWNER).user
        self.files = {"png": png_with_text(), "jpg": jpeg_with_exif()}
        api.force_authenticate(self.scientist)
        self.runs = {}
        for kind, data in self.files.items():
            run = api.post("/api/v1/runs/", {"checkpoint": checkpoint.pk,
                                             "prompt_set": prompt_set.pk,
                                             "name": f"{SECRET.decode()}-{kind}"},
                           format="json").json()
            archive = io.BytesIO()
            with zipfile.ZipFile(archive, "w") as handle:
                handle.writestr(f"img.{kind}", data)
                handle.writestr("manifest.csv", manifest_csv([(f"img.{kind}", PROMPT, 0)]))
            archive.seek(0)
            archive.name = "run.zip"
            response = api.post(f"/api/v1/runs/{run['id']}/import-images/",
                                {"archive": archive}, format="multipart")
            assert response.status_code == 201, response.content
            self.runs[kind] = GenerationRun.objects.get(pk=run["id"])
        api.force_authenticate(None)
        self.blobs = {kind: run.images.get().blob for kind, run in self.runs.items()}
        # What the worker runs after the import's transaction commits.
        assert blobs_make_displays([blob.pk for blob in self.blobs.values()]) == 2
        self.campaign = campaign_create(project=self.project, name="blind",
                                        runs=list(self.runs.values()), build_now=True)

    def annotator_task(self, client) -> dict:
        client.force_login(self.annotator)
        response = client.post(f"/api/v1/rate/{self.campaign.pk}/next/", {},
                               content_type="application/json")
        assert response.status_code == 201, response.content  # a new lease
        return response.json()

    def shown(self, client) -> dict[str, dict]:
        """The rating API's image entries for the annotator, keyed by the file kind."""
        task = self.annotator_task(client)
        by_url = {task[side]["url"]: task[side] for side in ("left", "right")}
        return {kind: by_url[self.url(blob)] for kind, blob in self.blobs.items()}

    def url(self, blob: ImageBlob) -> str:
        """The derivative's URL in this world's project."""
        return _display_url(blob, self.project.pk)


def _display_url(blob: ImageBlob, project_id: int) -> str:
    blob.refresh_from_db()
    ext = blob.display.name.rsplit(".", 1)[1]
    return f"/media/display/{project_display_name(project_id, blob.pk)}.{ext}"


@pytest.fixture
def world(api):
    return World(api)


# ---------------------------------------------------------------- what the annotator receives


def test_the_annotator_receives_the_png_pixels_without_its_text_chunks(client, world):
    original = world.files["png"]
    assert SECRET in original and b"tEXt" in png_chunks(original)
    response = client.get(world.shown(client)["png"]["url"])
    body = _body(response)
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert SECRET not in body
    assert webp_chunks(body) == WEBP_PIXEL_CHUNKS
    assert np.array_equal(_pixels(body), _pixels(original))  # lossless: the same pixels


def test_the_annotator_receives_the_jpeg_pixels_without_exif_or_comment(client, world):
    original = world.files["jpg"]
    assert SECRET in original and b"Exif" in original
    response = client.get(world.shown(client)["jpg"]["url"])
    body = _body(response)
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert SECRET not in body and b"Exif" not in body and b"2031:01:02" not in body
    # One lossless image chunk: no EXIF, XMP or ICC chunk, and none of the JPEG's tables.
    assert webp_chunks(body) == WEBP_PIXEL_CHUNKS
    assert not getattr(PILImage.open(io.BytesIO(body)), "quantization", None)
    # The JPEG's decoded pixels, exactly (what a browser shows of it, its artifacts included).
    assert np.array_equal(_pixels(body), _pixels(original))


def test_media_answers_carry_no_file_time_and_are_private(client, world):
    for entry in world.shown(client).values():
        response = client.get(entry["url"])
        assert response.status_code == 200
        assert not response.has_header("Last-Modified")
        assert not response.has_header("ETag")
        assert response["Cache-Control"].startswith("private")


def test_names_are_opaque_keyed_hashes_not_content_hashes(client, world):
    task = world.annotator_task(client)
    payload = str(task).encode()
    for blob in world.blobs.values():
        assert blob.sha256.encode() not in payload
        # The stored file's name is internal: the payload carries the per-project name.
        assert blob.display_token == display_token(blob.sha256) != blob.sha256
        assert blob.display_token.encode() not in payload
        assert project_display_name(world.project.pk, blob.pk).encode() in payload
        assert blob.sha256 not in blob.display.name
    assert SECRET not in payload


# ---------------------------------------------------------------- who receives what


def test_anonymous_and_foreign_users_get_404_on_derivatives_and_originals(client, world):
    urls = [world.url(blob) for blob in world.blobs.values()]
    urls += [blob.file.url for blob in world.blobs.values()]
    assert all(url.startswith("/media/") for url in urls)
    for url in urls:
        assert client.get(url).status_code == 404
    client.force_login(world.outsider)
    for url in urls:
        assert client.get(url).status_code == 404


def test_annotators_get_404_on_originals_and_previews_scientists_get_them(client, world):
    blobs = list(world.blobs.values())
    # The images' own preview task, as the import queued it (runs/previews.py).
    runs_make_previews(list(Image.objects.filter(blob__in=blobs).values_list("pk", flat=True)))
    client.force_login(world.annotator)
    for blob in blobs:
        blob.refresh_from_db()
        assert client.get(blob.file.url).status_code == 404
        assert client.get(blob.preview.url).status_code == 404
    client.force_login(world.scientist)
    for kind, blob in world.blobs.items():
        original = client.get(blob.file.url)
        assert original.status_code == 200
        assert _body(original) == world.files[kind]  # byte for byte, as imported
        assert not original.has_header("Last-Modified")
        assert client.get(blob.preview.url).status_code == 200
        assert client.get(world.url(blob)).status_code == 200


def test_unknown_names_and_other_storage_paths_get_404(client, world):
    client.force_login(world.scientist)
    blob = world.blobs["png"]
    name = project_display_name(world.project.pk, blob.pk)
    for path in (f"display/{'0' * 64}.png", f"display/{name}.jpg",
                 f"display/{blob.display_token}.png",  # the old global name, shared by projects
                 f"tiles/{blob.sha256}/image.dzi", "blobs/../settings.py", "nothing"):
        assert client.get(f"/media/{path}").status_code == 404


def test_a_removed_member_stops_receiving_media_once_the_access_cache_expires(client, world):
    from django.core.cache import cache

    url = world.url(world.blobs["png"])
    client.force_login(world.annotator)
    assert client.get(url).status_code == 200
    world.project.memberships.filter(user=world.annotator).delete()
    cache.clear()  # what ACCESS_CACHE_SECONDS of waiting does
    assert client.get(url).status_code == 404


# ---------------------------------------------------------------- delivery modes


def test_with_x_accel_redirect_django_checks_access_and_nginx_sends_the_bytes(
        client, world, settings):
    settings.EVALHUB_MEDIA_DELIVERY = "accel"
    settings.EVALHUB_MEDIA_ACCEL_PREFIX = "/_protected_media/"
    blob = world.blobs["png"]
    url = world.url(blob)
    assert client.get(url).status_code == 404  # anonymous: no header, nothing handed over
    client.force_login(world.annotator)
    response = client.get(url)
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_protected_media/{blob.display.name}"
    assert response.content == b""
    assert response["Content-Type"] == "image/webp"
    assert response["Cache-Control"].startswith("private")
    assert not response.has_header("Last-Modified")
    assert client.get(blob.file.url).status_code == 404  # annotators: still no original


def test_with_signed_delivery_derivatives_are_streamed_never_redirected(
        client, world, settings):
    """A derivative's object key is its blob's internal name, the same in every project:
    redirecting to it would let a member of two projects match images across them."""
    blob = world.blobs["jpg"]
    url = world.url(blob)
    settings.EVALHUB_MEDIA_DELIVERY = "signed"
    client.force_login(world.annotator)
    response = client.get(url)
    assert response.status_code == 200 and not response.has_header("Location")
    assert SECRET not in _body(response)
    assert response["Cache-Control"].startswith("private")


def test_with_object_storage_originals_redirect_to_a_short_lived_signed_url(
        client, world, settings):
    blob = world.blobs["jpg"]
    url = blob.file.url
    settings.EVALHUB_MEDIA_DELIVERY = "signed"
    settings.EVALHUB_MEDIA_SIGNED_URL_SECONDS = 45
    # django-storages signs offline; nothing is fetched from the (unreachable) endpoint.
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "media", "endpoint_url": "http://objects.invalid:9000",
                    "access_key": "test", "secret_key": "test", "region_name": "us-east-1",
                    "querystring_auth": True, "signature_version": "s3v4"}}}
    assert client.get(url).status_code == 404
    client.force_login(world.scientist)
    response = client.get(url)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"http://objects.invalid:9000/media/{blob.file.name}?")
    assert "X-Amz-Expires=45" in location and "X-Amz-Signature=" in location
    assert "response-cache-control=private" in location
    assert response["Cache-Control"] == "private, no-store"


# ---------------------------------------------------------------- derivatives not yet built


def test_a_small_image_without_its_derivative_is_built_on_first_request(client, world):
    blob = world.blobs["png"]
    blob.refresh_from_db()
    default_storage.delete(blob.display.name)
    ImageBlob.objects.filter(pk=blob.pk).update(display="")
    client.force_login(world.annotator)
    response = client.get(
        f"/media/display/{project_display_name(world.project.pk, blob.pk)}.webp")
    assert response.status_code == 200 and SECRET not in _body(response)
    blob.refresh_from_db()
    assert blob.display


def test_a_large_image_without_its_derivative_is_503_until_the_worker_made_it(client, db):
    side = int(DISPLAY_SYNC_MAX_PIXELS ** 0.5) + 1
    out = io.BytesIO()
    PILImage.new("RGB", (side, side), (1, 2, 3)).save(out, format="PNG")
    image = ImageFactory(blob=blob_store_bytes(out.getvalue(), name="large.png"))
    annotator = MembershipFactory(project=image.run.project, role=Role.ANNOTATOR).user
    client.force_login(annotator)
    url = f"/media/display/{project_display_name(image.run.project_id, image.blob.pk)}.webp"
    response = client.get(url)
    assert response.status_code == 503 and response["Retry-After"]
    assert b"still being prepared" in response.content
    assert blobs_make_displays([image.blob.pk]) == 1
    assert client.get(url).status_code == 200


def test_the_task_is_idempotent_and_a_crashed_build_is_redone(db):
    blob = blob_store_bytes(png_with_text(), name="a.png")
    assert blobs_make_displays([blob.pk]) == 1
    assert blobs_make_displays([blob.pk]) == 0
    blob.refresh_from_db()
    first = default_storage.open(blob.display.name).read()
    # A build that died after writing part of the file but before recording it.
    ImageBlob.objects.filter(pk=blob.pk).update(display="")
    default_storage.delete(blob.display.name)
    default_storage.save(blob.display.name, io.BytesIO(b"half a file"))
    blob.display = ""
    assert blob_make_display(blob) is True
    assert default_storage.open(blob.display.name).read() == first  # deterministic bytes


# ---------------------------------------------------------------- tiles are pixels too


def test_tiles_are_addressed_by_the_token_and_carry_no_metadata(client, world, monkeypatch):
    monkeypatch.setattr(tiles, "TILE_MIN_SIDE_PX", 64)  # the 96 px test images get pyramids
    for large in world.blobs.values():
        assert tiles.blob_build_tiles(large)  # a worker's job (web views never build)
    blob = world.blobs["jpg"]
    entry = world.shown(client)["jpg"]
    assert entry["tiles"] == f"/rate/tiles/{project_display_name(world.project.pk, blob.pk)}.dzi"
    assert client.get(entry["tiles"]).status_code == 200
    tile = client.get(entry["tiles"].replace(".dzi", "_files/7/0_0.jpeg"))
    body = _body(tile)
    assert tile.status_code == 200 and SECRET not in body and b"Exif" not in body
    assert not [m for m in jpeg_markers(body) if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert client.get(f"/rate/tiles/{blob.sha256}.dzi").status_code == 404  # not by hash
    # nor by the blob's internal name, which is the same in every project
    assert client.get(f"/rate/tiles/{blob.display_token}.dzi").status_code == 404
    client.logout()
    assert client.get(entry["tiles"]).status_code == 404


# ---------------------------------------------------------------- the derivative's pixels


def test_exif_orientation_is_applied_to_the_pixels_because_the_tag_is_dropped():
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    photo(size=(40, 20)).save(out, format="JPEG", exif=exif)
    data, fmt = render_display(out.getvalue())
    assert fmt.extension == "webp"
    with PILImage.open(io.BytesIO(data)) as shown:
        assert shown.size == (20, 40) and not shown.getexif()


def test_an_icc_profile_is_converted_to_srgb_pixels_and_dropped():
    out = io.BytesIO()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo(seed=3).save(out, format="PNG", icc_profile=srgb)
    assert b"iCCP" in png_chunks(out.getvalue())
    data, _ = render_display(out.getvalue())
    assert webp_chunks(data) == WEBP_PIXEL_CHUNKS
    # sRGB to sRGB: the colours survive the transform within rounding.
    assert np.abs(_pixels(data) - _pixels(out.getvalue())).max() <= 2


def test_transparency_survives_losslessly_with_the_colour_under_it():
    rgba = PILImage.new("RGBA", (8, 8), (10, 20, 30, 0))
    rgba.putpixel((3, 3), (200, 100, 50, 128))
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    data, _ = render_display(out.getvalue())
    with PILImage.open(io.BytesIO(data)) as shown:
        assert shown.mode == "RGBA"
        assert shown.tobytes() == rgba.tobytes()


def test_webp_stays_lossless_when_it_was_and_loses_its_exif():
    exif = PILImage.Exif()
    exif[0x0110] = SECRET.decode()
    out = io.BytesIO()
    photo(seed=4).save(out, format="WEBP", lossless=True, exif=exif)
    assert SECRET in out.getvalue()
    data, fmt = render_display(out.getvalue())
    assert fmt.extension == "webp" and SECRET not in data and b"EXIF" not in data
    assert np.array_equal(_pixels(data), _pixels(out.getvalue()))
