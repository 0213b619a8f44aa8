"""A campaign with images over 4096 px serves no pair before their tiles exist: the rating API
says it is preparing images, with progress, and queues the missing builds."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import blob_build_tiles
from evalhub.campaigns.building import images
from evalhub.campaigns.building.images import campaign_images_preparing
from evalhub.campaigns.models import Lease
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _solid_png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """Large but cheap: a solid PNG compresses to a few kB and decodes in milliseconds."""
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, format="PNG", compress_level=1)
    return out.getvalue()


@pytest.fixture
def large_world(monkeypatch):
    # Progress is re-read at every request here (3 s in production).
    monkeypatch.setattr(images, "PREPARING_CACHE_SECONDS", 0)
    return build_campaign(runs=2, prompts=2, image_bytes=lambda prompt, run: _solid_png(
        4200, 300, (60 * prompt, 90 * run, 40)))


def _large_blobs(world) -> list[ImageBlob]:
    return list(ImageBlob.objects.filter(images__run__in=world.runs).order_by("pk"))


def test_nothing_is_served_until_every_large_image_has_its_tiles(
        api, large_world, sent_tasks, django_capture_on_commit_callbacks):
    world = large_world
    blobs = _large_blobs(world)
    assert len(blobs) == 4
    api.force_authenticate(world.annotator)
    base = f"/api/v1/rate/{world.campaign.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        assert api.get(base).json()["preparing"] == {"done": 0, "total": 4}
        for _ in range(2):
            answer = api.post(f"{base}next/", {}, format="json")
            assert answer.status_code == 200
            assert answer.json() == {"done": False, "preparing": {"done": 0, "total": 4},
                                     "detail": "Preparing images (0 of 4)"}
    assert not Lease.objects.exists()
    # The missing builds are queued (once; the import queued them too, but a message may be lost).
    assert [(name, sorted(ids)) for name, (ids,) in sent_tasks] == [
        ("evalhub.blobs.build_tiles", [blob.pk for blob in blobs])]

    for blob in blobs[:3]:
        assert blob_build_tiles(blob)
    answer = api.post(f"{base}next/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["preparing"] == {"done": 3, "total": 4}
    assert answer.json()["detail"] == "Preparing images (3 of 4)"

    assert blob_build_tiles(blobs[3])
    answer = api.post(f"{base}next/", {}, format="json")
    assert answer.status_code == 201 and answer.json()["left"]["tiles"].endswith(".dzi")
    assert api.get(base).json()["preparing"] is None


def test_a_ready_campaign_costs_no_query_to_check_again(large_world):
    for blob in _large_blobs(large_world):
        blob_build_tiles(blob)
    assert campaign_images_preparing(large_world.campaign) is None  # one query, then cached
    with CaptureQueriesContext(connection) as queries:
        assert campaign_images_preparing(large_world.campaign) is None
    assert len(queries) == 0


def test_a_campaign_of_small_images_is_never_preparing(api):
    world = build_campaign(runs=2, prompts=1)
    api.force_authenticate(world.annotator)
    assert api.get(f"/api/v1/rate/{world.campaign.pk}/").json()["preparing"] is None
    assert api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {},
                    format="json").status_code == 201
