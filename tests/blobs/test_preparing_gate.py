"""A campaign serves no pair before every pane could be drawn: images over 4096 px need their
tiles, and images too large to encode in a web request (over 2048 x 2048 pixels) a display
derivative written by the current rule (blobs/display.py). Until then the rating API says it is
preparing images, with progress, and queues what is missing."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from evalhub.blobs import display
from evalhub.blobs.after_store import blobs_after_store
from evalhub.blobs.display import DISPLAY_SYNC_MAX_PIXELS, blob_make_display
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tasks import blobs_make_displays
from evalhub.blobs.tiles import blob_build_tiles
from evalhub.campaigns.building import images
from evalhub.campaigns.building.images import campaign_images_preparing
from evalhub.campaigns.models import Lease
from tests.blobs.test_display_uniform import _stored_by_the_old_rule
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
                                     "detail": "Preparing media (0 of 4)"}
    assert not Lease.objects.exists()
    # The missing builds are queued (once; the import queued them too, but a message may be
    # lost), one pyramid per message so that every worker takes a share.
    assert sent_tasks == [("evalhub.blobs.build_tiles", [[blob.pk]]) for blob in blobs]

    for blob in blobs[:3]:
        assert blob_build_tiles(blob)
    answer = api.post(f"{base}next/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["preparing"] == {"done": 3, "total": 4}
    assert answer.json()["detail"] == "Preparing media (3 of 4)"

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


def test_a_pyramid_built_by_a_worker_of_the_previous_release_counts_as_missing(
        large_world, sent_tasks, django_capture_on_commit_callbacks):
    """Such a worker (still running during a deploy) records no tiles format; its tiles' format
    followed the file, so the pyramid is built again before the campaign is served."""
    blobs = _large_blobs(large_world)
    for blob in blobs:
        blob_build_tiles(blob)
    ImageBlob.objects.filter(pk=blobs[0].pk).update(tiles_format="")
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_images_preparing(large_world.campaign).progress() == {
            "done": 3, "total": 4}
    assert sent_tasks == [("evalhub.blobs.build_tiles", [[blobs[0].pk]])]


def test_checking_a_preparing_campaign_costs_two_aggregate_queries(large_world):
    """One over its images (tiles and derivatives alike), one over its videos; the builds are
    queued at most once a minute."""
    assert campaign_images_preparing(large_world.campaign) is not None  # queues the builds
    with CaptureQueriesContext(connection) as queries:
        assert campaign_images_preparing(large_world.campaign) is not None
    assert len(queries) == 2


# 2100 x 2100: no tiles, and no derivative written in a web request.
SHARP = int(DISPLAY_SYNC_MAX_PIXELS ** 0.5) + 52


@pytest.fixture
def sharp_world(monkeypatch):
    monkeypatch.setattr(images, "PREPARING_CACHE_SECONDS", 0)
    return build_campaign(runs=3, prompts=1, image_bytes=lambda prompt, run: _solid_png(
        SHARP, SHARP, (60 * prompt, 90 * run, 40)))


def test_images_too_large_for_a_request_wait_for_a_derivative_of_the_current_rule(
        api, client, sharp_world, sent_tasks, monkeypatch, django_capture_on_commit_callbacks):
    """Right after an upgrade their derivatives are of the old rule, which the media view does
    not serve (503 until a worker rewrites them): a campaign served meanwhile would show
    annotators empty panes."""
    world = sharp_world
    blobs = _large_blobs(world)
    assert len(blobs) == 3
    blob_make_display(blobs[0])  # current
    _stored_by_the_old_rule(blobs[1])  # written before the upgrade
    # blobs[2]: none yet
    monkeypatch.setattr(display, "MAKE_BATCH", 1)  # one message per blob, to see the batches
    api.force_authenticate(world.annotator)
    base = f"/api/v1/rate/{world.campaign.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"{base}next/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["preparing"] == {"done": 1, "total": 3}
    assert not Lease.objects.exists()
    assert sent_tasks == [("evalhub.blobs.make_displays", [[blobs[1].pk]]),
                          ("evalhub.blobs.make_displays", [[blobs[2].pk]])]

    assert blobs_make_displays([blobs[1].pk, blobs[2].pk]) == 2
    answer = api.post(f"{base}next/", {}, format="json")
    assert answer.status_code == 201
    client.force_login(world.annotator)
    for side in ("left", "right"):
        assert client.get(answer.json()[side]["url"]).status_code == 200


def _preparing_looked_at_again(world) -> None:
    """A look after the once-a-minute gate has run out (a test cannot wait a minute)."""
    cache.delete(f"campaign-images-requested:{world.campaign.pk}")
    assert campaign_images_preparing(world.campaign) is not None


def test_missing_builds_are_queued_again_only_once_the_preparation_has_stalled(
        large_world, sent_tasks, monkeypatch, django_capture_on_commit_callbacks):
    """While workers get through an import, a re-queue every minute would pile the whole
    remaining list behind the import's own messages; a lost message is queued again once
    nothing has been built for ``STALLED_SECONDS``."""
    world = large_world
    blobs = _large_blobs(world)
    clock = [1_000_000.0]
    monkeypatch.setattr(images.time, "time", lambda: clock[0])

    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_images_preparing(world.campaign) is not None
    assert len(sent_tasks) == 4  # the first look queues what is missing
    sent_tasks.clear()

    assert blob_build_tiles(blobs[0])  # a worker is getting through them
    clock[0] += images.STALLED_SECONDS - 1
    with django_capture_on_commit_callbacks(execute=True):
        _preparing_looked_at_again(world)
    assert sent_tasks == []

    clock[0] += images.STALLED_SECONDS - 1  # no build since the last look, but not for long
    with django_capture_on_commit_callbacks(execute=True):
        _preparing_looked_at_again(world)
    assert sent_tasks == []

    clock[0] += 2  # STALLED_SECONDS without a build: the rest is queued again, once
    with django_capture_on_commit_callbacks(execute=True):
        _preparing_looked_at_again(world)
        _preparing_looked_at_again(world)
    assert sent_tasks == [("evalhub.blobs.build_tiles", [[blob.pk]]) for blob in blobs[1:]]


def test_stored_files_spread_their_pyramids_over_the_workers(
        large_world, sent_tasks, django_capture_on_commit_callbacks):
    """One message per pyramid (seconds to a minute of work each), derivatives in batches:
    the builds of a large import are shared by every worker of the queue, not done by one."""
    blobs = _large_blobs(large_world)
    with django_capture_on_commit_callbacks(execute=True):
        blobs_after_store([blob.pk for blob in blobs], previews=False)
    builds = [args for name, args in sent_tasks if name == "evalhub.blobs.build_tiles"]
    assert builds == [[[blob.pk]] for blob in blobs]
    assert [args for name, args in sent_tasks if name == "evalhub.blobs.make_displays"] == [
        [[blob.pk for blob in blobs]]]
