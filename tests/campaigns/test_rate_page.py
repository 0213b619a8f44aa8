"""The rating page arrives with its first task: what next/ would answer, leased by the same
service (serving/rating.py rate_next), so a reload resumes the lease instead of taking another;
tiled images carry their pyramid's geometry, exactly what the builder writes in the .dzi; and
the page names every module it loads (modulepreload), with no inline script."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tiles import DZI_NS, blob_build_tiles, dzi_path
from evalhub.campaigns.models import Campaign, CampaignStatus, Lease, LeaseStatus, TaskKind
from evalhub.campaigns.serving.payloads import image_payload
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _first(page: str) -> dict:
    match = re.search(r'<script id="rate-first" type="application/json">(.*?)</script>', page,
                      re.S)
    assert match, "the page carries its first task"
    return json.loads(match.group(1))


def _active(world) -> list[str]:
    return sorted(str(pk) for pk in Lease.objects.filter(
        campaign=world.campaign, annotator=world.annotator,
        status=LeaseStatus.ACTIVE).values_list("pk", flat=True))


def test_the_page_carries_its_first_task_and_a_reload_resumes_that_lease(client):
    world = build_campaign(runs=2, prompts=3)
    client.force_login(world.annotator)
    first = _first(client.get(f"/rate/{world.campaign.pk}/").content.decode())
    assert _active(world) == [first["lease"]]
    assert set(first) >= {"lease", "expires_at", "prompt", "left", "right", "source_image"}
    again = _first(client.get(f"/rate/{world.campaign.pk}/").content.decode())
    assert again == first  # the held lease, not a second one
    assert _active(world) == [first["lease"]]


def test_the_next_api_sees_the_pages_lease_as_held(client, api):
    world = build_campaign(runs=2, prompts=3)
    client.force_login(world.annotator)
    first = _first(client.get(f"/rate/{world.campaign.pk}/").content.decode())
    api.force_login(world.annotator)
    url = f"/api/v1/rate/{world.campaign.pk}/next/"
    # Without the page's lease in `exclude`, next/ hands the held lease back; with it, a new one.
    assert api.post(url, {}, format="json").json()["lease"] == first["lease"]
    second = api.post(url, {"exclude": [first["lease"]]}, format="json").json()
    assert second["lease"] != first["lease"]
    assert _active(world) == sorted([first["lease"], second["lease"]])


def test_a_campaign_that_is_not_open_says_why_instead_of_a_task(client):
    world = build_campaign(runs=2, prompts=2)
    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.CLOSED)
    client.force_login(world.annotator)
    first = _first(client.get(f"/rate/{world.campaign.pk}/").content.decode())
    assert first["done"] is True and first["detail"]
    assert _active(world) == []


def test_the_page_preloads_its_modules_and_has_no_inline_script(client):
    world = build_campaign(runs=2, prompts=2)
    client.force_login(world.annotator)
    response = client.get(f"/rate/{world.campaign.pk}/")
    page = response.content.decode()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)"', page))
    assert {"/static/js/rate.js", "/static/js/rate/stage.js", "/static/js/rate/queue.js",
            "/static/js/rate/answers.js", "/static/js/rate/picks.js"} <= preloaded
    for script in re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S):
        attributes, body = script
        assert 'type="application/json"' in attributes or ("src=" in attributes and not body)
    assert "no-store" in response["Cache-Control"]
    assert "openseadragon.min.js" not in page  # no tiled image in the first task


def test_a_best_of_k_page_is_the_same_page_with_the_grid(client):
    world = build_campaign(runs=3, prompts=2, task_kind=TaskKind.BEST_OF_K, k=3,
                           judgments_per_pair=1, rank_all=True)
    client.force_login(world.annotator)
    page = client.get(f"/rate/{world.campaign.pk}/").content.decode()
    config = json.loads(re.search(r'<script id="rate-config" type="application/json">(.*?)'
                                  r"</script>", page, re.S).group(1))
    assert (config["kind"], config["k"], config["rank_all"]) == ("best_of_k", 3, True)
    assert page.count('class="pane grid-pane"') == 3
    assert len(_first(page)["images"]) == 3


def _picture(mode: str, size: tuple[int, int], orientation: int = 1) -> bytes:
    """A PNG, or a JPEG carrying EXIF ``orientation`` when it is not 1."""
    out = io.BytesIO()
    picture = PILImage.new(mode, size, (40, 90, 160, 200)[: len(mode)])
    if orientation == 1:
        picture.save(out, format="PNG")
    else:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        picture.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.mark.parametrize(("mode", "size", "orientation"), [
    ("RGB", (5000, 3000), 1), ("RGBA", (3000, 4500), 1),
    ("RGB", (5000, 3000), 6),  # a quarter turn: shown (and tiled) 3000 x 5000
    ("RGB", (5000, 3000), 3),  # a half turn keeps the size
])
def test_the_pyramid_geometry_in_the_payload_is_the_built_descriptors(mode, size, orientation):
    blob = blob_store_bytes(_picture(mode, size, orientation), name=f"large-{mode}.img")
    assert blob_build_tiles(blob)
    with default_storage.open(dzi_path(blob.sha256), "rb") as handle:
        image = ET.fromstring(handle.read())
    built = image.find(f"{{{DZI_NS}}}Size")
    pyramid = image_payload(blob, project_id=1)["pyramid"]
    assert (pyramid["width"], pyramid["height"]) == (int(built.get("Width")),
                                                     int(built.get("Height")))
    assert (pyramid["tile_size"], pyramid["overlap"], pyramid["format"]) == (
        int(image.get("TileSize")), int(image.get("Overlap")), image.get("Format"))
    # The tiles' folder is the descriptor's URL with _files/ for .dzi (the DZI convention).
    tiles = image_payload(blob, project_id=1)["tiles"]
    assert pyramid["url"] == tiles.removesuffix(".dzi") + "_files/"
    assert default_storage.exists(
        f"tiles/{blob.sha256}/image_files/0/0_0.{pyramid['format']}")


def test_a_small_image_has_no_pyramid():
    blob = blob_store_bytes(_picture("RGB", (640, 480)), name="small.png")
    assert image_payload(blob, project_id=1)["pyramid"] is None


def test_a_best_of_k_campaign_prepares_all_k_images_before_serving(api):
    """The gate counts every member of a best-of-K task, not only the two a pair would have."""
    world = build_campaign(
        runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3, judgments_per_pair=1,
        image_bytes=lambda p, r: _picture("RGB", (4100 + r, 64)))
    api.force_login(world.annotator)
    answer = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json").json()
    assert answer["done"] is False and answer["preparing"] == {"done": 0, "total": 3}
