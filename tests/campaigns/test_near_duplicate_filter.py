"""The campaigns' LPIPS near-duplicate filter (building/similarity.py): which stored distances
a build may reuse, what its report says about the distances it filtered on, and how the
campaign page and the ``campaign`` command word it.

A distance is reused only when the backbone the current settings would load computed it (same
backbone id, same ``calibrated``): random-weight distances never stand in for real ones, nor
the other way round. Real weights are absent here (``TORCH_HOME`` points at an empty folder),
as on an offline machine that has not run ``fetch_weights``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from PIL import Image as PILImage

from evalhub.campaigns.building.similarity import lpips_pair_distances
from evalhub.campaigns.models import CampaignStatus
from evalhub.campaigns.services import campaign_create
from evalhub.evaluation.models import MetricName, PairMetric
from tests.builders import build_campaign
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

RANDOM_BACKBONE = "lpips:alex/v0.1+random:0"  # metrics.lpips_distance, weights="random", seed 0
REAL_BACKBONE = "lpips:alex/v0.1"


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _flat(value: int, *, dot: bool = False) -> np.ndarray:
    pixels = np.full((32, 32, 3), value, np.uint8)
    if dot:  # one pixel changed: another file, the same picture to the eye
        pixels[0, 0] = 200
    return pixels


def _images(prompt: int, run: int) -> bytes:
    """Prompt 0: the same grey square but for one pixel (too alike to judge); prompt 1: a grey
    square against stripes; prompt 2: red against blue (both plainly different)."""
    if prompt == 0:
        return _png(_flat(40, dot=run == 1))
    if prompt == 1:
        striped = _flat(40)
        striped[::4] = 255
        return _png(striped if run else _flat(40))
    return png_bytes(color=(255, 0, 0) if run else (0, 0, 255))


@pytest.fixture
def weights_missing(monkeypatch, tmp_path):
    """Settings that ask for the real weights on a machine that has none."""
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture
def random_weights(monkeypatch):
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")


def _page(campaign) -> str:
    client = Client()
    client.force_login(campaign.project.memberships.get(role="scientist").user)
    return client.get(f"/campaigns/{campaign.pk}/manage/").content.decode()


def _command(campaign) -> str:
    out = io.StringIO()
    call_command("campaign", str(campaign.pk), stdout=out)
    return out.getvalue()


def test_without_weights_the_filter_is_reported_as_not_applied(weights_missing):
    world = build_campaign(runs=2, prompts=3, image_bytes=_images, min_lpips_distance=0.1)
    report = world.campaign.build_report
    assert report["lpips_filter"] is False  # nothing was filtered: no distance could be had
    assert report["lpips_not_applied"] == "weights missing"
    assert report["skipped_near_identical"] == 0 and report["tasks"] == 3
    assert not PairMetric.objects.exists()
    page = _page(world.campaign)
    assert ('<dt>Near-duplicate filter</dt><dd data-field="near_duplicate_filter" '
            'id="near-duplicate-filter">not applied: weights missing</dd>') in page
    assert "Near-duplicate filter: not applied: weights missing." in _command(world.campaign)


def test_random_weight_distances_are_stored_and_flagged_uncalibrated(random_weights):
    world = build_campaign(runs=2, prompts=3, image_bytes=_images, min_lpips_distance=0.1)
    campaign = world.campaign
    report = campaign.build_report
    assert report["lpips_filter"] is True and report["lpips_uncalibrated"] is True
    assert report["lpips_backbone"] == RANDOM_BACKBONE
    assert "lpips_not_applied" not in report
    stored = PairMetric.objects.filter(metric=MetricName.LPIPS)
    assert stored.count() == 3
    assert set(stored.values_list("backbone_id", "calibrated")) == {(RANDOM_BACKBONE, False)}
    too_alike = [row for row in stored if row.value < 0.1]
    assert [row.image_a.prompt_id for row in too_alike] == [world.prompts[0].pk]
    assert report["skipped_near_identical"] == 1 and campaign.tasks.count() == 2

    page = _page(campaign)
    assert ('id="near-duplicate-filter">1 pair skipped (LPIPS, uncalibrated)</dd>') in page
    assert ("1 pair not asked: too alike to judge (LPIPS distance, uncalibrated, under the "
            "campaign&#x27;s threshold)") in page
    progress = Client()
    progress.force_login(world.scientist)
    figures = progress.get(f"/campaigns/{campaign.pk}/manage/progress/").json()
    assert figures["near_duplicate_filter"] == "1 pair skipped (LPIPS, uncalibrated)"
    assert "Near-duplicate filter: 1 pair skipped (LPIPS, uncalibrated)." in _command(campaign)


def test_stored_random_weight_distances_are_not_reused_when_real_weights_are_asked_for(
        random_weights, monkeypatch, tmp_path):
    # The defect: a first build with random weights stored uncalibrated distances, and a
    # build under real-weights settings (but no weights yet) filtered on them silently.
    world = build_campaign(runs=2, prompts=3, image_bytes=_images, min_lpips_distance=0.1)
    assert world.campaign.build_report["skipped_near_identical"] == 1
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    again = campaign_create(project=world.campaign.project, name="again", runs=world.runs,
                            min_lpips_distance=0.1, build_now=True)
    assert again.build_report["lpips_filter"] is False
    assert again.build_report["lpips_not_applied"] == "weights missing"
    assert again.build_report["skipped_near_identical"] == 0
    assert again.tasks.count() == 3 and again.status == CampaignStatus.ACTIVE
    assert set(again.tasks.values_list("lpips_distance", flat=True)) == {None}


def test_distances_of_real_weights_are_not_reused_under_random_weights(random_weights):
    world = build_campaign(runs=2, prompts=3, image_bytes=_images)
    pairs = [(task.image_a, task.image_b) for task in world.tasks]
    PairMetric.objects.bulk_create([
        PairMetric(image_a=a, image_b=b, metric=MetricName.LPIPS, value=0.0,
                   backbone_id=REAL_BACKBONE, weights_sha256="0" * 64, calibrated=True)
        for a, b in pairs])

    distances = lpips_pair_distances(pairs)

    assert distances is not None
    assert (distances.backbone_id, distances.calibrated) == (RANDOM_BACKBONE, False)
    assert distances.values[1] > 0.1 and distances.values[2] > 0.1  # computed, not the zeros
    assert PairMetric.objects.filter(backbone_id=RANDOM_BACKBONE).count() == 3


def test_a_stored_distance_of_the_same_backbone_is_reused(random_weights):
    world = build_campaign(runs=2, prompts=3, image_bytes=_images)
    pairs = [(task.image_a, task.image_b) for task in world.tasks]
    a, b = pairs[2]  # red against blue: far apart when computed
    PairMetric.objects.create(image_a=a, image_b=b, metric=MetricName.LPIPS, value=0.0,
                              backbone_id=RANDOM_BACKBONE, weights_sha256="random:0",
                              calibrated=False)

    distances = lpips_pair_distances(pairs)

    assert distances is not None and distances.values[2] == 0.0
    assert PairMetric.objects.filter(backbone_id=RANDOM_BACKBONE).count() == 3


def test_lpips_sees_the_pixels_annotators_see(random_weights):
    # Two fully transparent squares whose hidden colours differ (red, blue) look the same,
    # white, on the rating page: the shared decoder (metrics.imageio.decode_image) composites
    # alpha on white, so LPIPS finds them identical. Dropping alpha compared red with blue.
    def transparent(prompt: int, run: int) -> bytes:
        hidden = (255, 0, 0, 0) if run else (0, 0, 255, 0)
        return png_bytes(color=hidden, mode="RGBA") if prompt == 0 else _images(2, run)

    world = build_campaign(runs=2, prompts=2, image_bytes=transparent)
    pairs = [(task.image_a, task.image_b) for task in world.tasks]

    distances = lpips_pair_distances(pairs)

    assert distances is not None
    assert distances.values[0] == pytest.approx(0.0, abs=1e-6)
    assert distances.values[1] > 0.1
