"""The rating page's tiles served cheaply and no more widely: tile grants (blobs/tile_grants.py)
admit the annotator a lease named without an access query, and anything else (no grant, a
forged, expired or other user's grant) takes the full access rule; small levels are also
served whole, one picture each (blobs/tiles.py), assembled from the tiles for a pyramid built
before they were stored."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from evalhub.blobs.names import project_display_name
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tile_grants import GRANT_WINDOW_SECONDS, grant_admits, tile_grant
from evalhub.blobs.tiles import Pyramid, blob_build_tiles, tile_path, whole_path
from evalhub.campaigns.page import views as page_views
from evalhub.projects.models import Role
from tests.blobs.test_tiles import H, W, _gradient_png
from tests.builders import build_campaign
from tests.factories import ImageFactory, MembershipFactory, UserFactory

TOKEN = "ab" * 32
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def large_png() -> bytes:
    return _gradient_png()


@pytest.fixture
def built(db, large_png):
    """A 5000 x 3000 image of a run, its pyramid built, and an annotator of its project."""
    blob = blob_store_bytes(large_png, name="large.png")
    assert blob_build_tiles(blob)
    image = ImageFactory(blob=blob)
    member = MembershipFactory(project=image.run.project, role=Role.ANNOTATOR).user
    blob.project_name = project_display_name(image.run.project_id, blob.pk)  # the URL's name
    return member, blob


def _tile_url(blob, grant: str | None = None, tile: str = "13/9_5.jpeg") -> str:
    return f"/rate/tiles/{blob.project_name}_files/{tile}" + (f"?g={grant}" if grant else "")


def _picture(response) -> PILImage.Image:
    body = (b"".join(response.streaming_content) if response.streaming
            else response.content)
    return PILImage.open(io.BytesIO(body))


# ---------------------------------------------------------------- grants


def test_a_grant_admits_its_user_and_image_for_one_to_two_windows():
    grant = tile_grant(TOKEN, 7, now=NOW)
    expiry = int(grant.split("-")[0])
    assert GRANT_WINDOW_SECONDS <= expiry - NOW <= 2 * GRANT_WINDOW_SECONDS
    assert grant_admits(grant, TOKEN, 7, now=NOW)
    assert grant_admits(grant, TOKEN, "7", now=expiry - 1)  # the session keeps the id as text
    assert not grant_admits(grant, TOKEN, 7, now=expiry)  # expired


def test_a_grant_is_the_same_within_a_window_so_tile_urls_stay_cacheable():
    start = (NOW // GRANT_WINDOW_SECONDS) * GRANT_WINDOW_SECONDS
    assert tile_grant(TOKEN, 7, now=start) == tile_grant(TOKEN, 7, now=start + 59)
    assert tile_grant(TOKEN, 7, now=start) != tile_grant(TOKEN, 7, now=start + 60)


def test_forged_and_foreign_grants_are_refused():
    grant = tile_grant(TOKEN, 7, now=NOW)
    expiry, signature = grant.split("-")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert not grant_admits(f"{expiry}-{flipped}", TOKEN, 7, now=NOW)  # forged
    assert not grant_admits(f"{int(expiry) + 3600}-{signature}", TOKEN, 7, now=NOW)  # extended
    assert not grant_admits(grant, "cd" * 32, 7, now=NOW)  # another image
    assert not grant_admits(grant, TOKEN, 8, now=NOW)  # another user
    assert not grant_admits(grant, TOKEN, None, now=NOW)  # no signed-in user
    for malformed in ("", "-", "abc", f"{expiry}-", f"x{expiry}-{signature}", None,
                      f"\u00b2-{signature}", f"\u0663{expiry[1:]}-{signature}"):
        assert not grant_admits(malformed, TOKEN, 7, now=NOW)


# ---------------------------------------------------------------- granted tile requests


def test_a_granted_tile_request_reads_neither_the_blob_nor_the_roles(client, built):
    member, blob = built
    client.force_login(member)
    url = _tile_url(blob, tile_grant(blob.project_name, member.pk))
    assert client.get(url).status_code == 200  # this process learns the token's pyramid
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url.replace("9_5", "8_5"))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    read = " ".join(query["sql"] for query in queries.captured_queries)
    for table in ("blobs_imageblob", "projects_membership"):
        assert table not in read


def test_a_grant_does_not_outlive_its_users_password_or_account(client, built):
    member, blob = built
    client.force_login(member)
    url = _tile_url(blob, tile_grant(blob.project_name, member.pk))
    assert client.get(url).status_code == 200
    member.set_password("a-new-password-after-a-leak")
    member.save()  # the session's password hash no longer matches: signed out
    assert client.get(url.replace("9_5", "8_5")).status_code == 404
    client.force_login(member)
    url = _tile_url(blob, tile_grant(blob.project_name, member.pk))
    assert client.get(url).status_code == 200
    member.is_active = False
    member.save()
    assert client.get(url.replace("9_5", "7_5")).status_code == 404


def test_a_grant_with_non_ascii_digits_is_refused_not_a_server_error(client, built):
    member, blob = built
    client.force_login(member)
    assert client.get(_tile_url(blob, "\u00b2-" + "0" * 32)).status_code == 200  # full rule
    client.force_login(UserFactory())
    assert client.get(_tile_url(blob, "\u00b2-" + "0" * 32)).status_code == 404
    assert client.get(_tile_url(blob, "\u00b2-" + "0" * 32, tile="12/0_0.jpeg")
                      .replace("12/0_0.jpeg", "12/whole.jpeg")).status_code == 404


def test_another_users_grant_does_not_admit_an_outsider(client, built):
    member, blob = built
    url = _tile_url(blob, tile_grant(blob.project_name, member.pk))
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404


def test_without_a_valid_grant_the_access_rule_decides(client, built):
    member, blob = built
    granted = tile_grant(blob.project_name, member.pk)
    expired = tile_grant(blob.project_name, member.pk, now=NOW - 3600)
    expiry, signature = granted.split("-")
    forged = f"{expiry}-{'0' * len(signature)}"
    assert client.get(_tile_url(blob, granted)).status_code == 404  # anonymous: no session
    client.force_login(UserFactory())
    for grant in (expired, forged):
        assert client.get(_tile_url(blob, grant)).status_code == 404
    client.force_login(member)  # a member is still served, by the full check
    for grant in (expired, forged, None):
        assert client.get(_tile_url(blob, grant)).status_code == 200


def test_a_lease_payload_carries_its_annotators_grant(api, db):
    world = build_campaign(runs=2, prompts=1, judgments_per_pair=1,
                           image_bytes=lambda p, r: _gradient_png(4200 + r, 300))
    task = world.tasks[0]
    for image in (task.image_a, task.image_b):
        assert blob_build_tiles(image.blob)
    api.force_login(world.annotator)
    payload = api.post(f"/api/v1/rate/{world.campaign.pk}/next/", {}, format="json").json()
    for side in ("left", "right"):
        pyramid = payload[side]["pyramid"]
        token = pyramid["url"].split("/")[-2].removesuffix("_files")
        grant = pyramid["query"].removeprefix("?g=")
        assert grant_admits(grant, token, world.annotator.pk)
        assert not grant_admits(grant, token, world.annotators[1].pk)
        tile = api.get(f"{pyramid['url']}13/0_0.{pyramid['format']}{pyramid['query']}")
        assert tile.status_code == 200


# ---------------------------------------------------------------- whole levels


def test_small_levels_are_stored_whole_with_the_pixels_of_their_tiles(built):
    _, blob = built
    pyramid = Pyramid(W, H)
    # 11: 1250 x 750 (3 x 2 tiles), 10: 625 x 375 (2 x 1); 12 is over 2048, 9 one tile.
    assert pyramid.whole_levels() == [10, 11]
    for level in pyramid.whole_levels():
        with default_storage.open(whole_path(blob.sha256, level, "jpeg"), "rb") as handle:
            whole = PILImage.open(handle)
            whole.load()
        assert whole.size == pyramid.level_size(level)
        left, top, _, _ = pyramid.tile_box(level, 1, 0)
        with default_storage.open(tile_path(blob.sha256, level, 1, 0, "jpeg"), "rb") as handle:
            tile = PILImage.open(handle).convert("RGB")
        near = zip(whole.getpixel((left + 20, top + 20)), tile.getpixel((20, 20)), strict=True)
        assert max(abs(a - b) for a, b in near) < 6


def test_the_page_gets_whole_levels_by_grant_and_nothing_else(client, built):
    member, blob = built
    client.force_login(member)
    grant = tile_grant(blob.project_name, member.pk)
    response = client.get(_tile_url(blob, grant, "11/whole.jpeg"))
    assert response.status_code == 200 and "immutable" in response["Cache-Control"]
    assert _picture(response).size == (1250, 750)
    for level in (9, 12, 13):  # one tile already, or too large to be stored whole
        assert client.get(_tile_url(blob, grant, f"{level}/whole.jpeg")).status_code == 404
    client.force_login(UserFactory())
    assert client.get(_tile_url(blob, grant, "11/whole.jpeg")).status_code == 404


def test_a_pyramid_built_before_whole_levels_gets_them_assembled_from_its_tiles(
        client, built, monkeypatch):
    member, blob = built
    monkeypatch.setattr(page_views, "_WHOLE_STORED", set())
    for level in Pyramid(W, H).whole_levels():
        default_storage.delete(whole_path(blob.sha256, level, "jpeg"))
    client.force_login(member)
    response = client.get(_tile_url(blob, None, "11/whole.jpeg"))
    assert response.status_code == 200
    picture = _picture(response).convert("RGB")
    assert picture.size == (1250, 750)
    red, green, _ = picture.getpixel((1249, 749))  # the far corner: the last tile's pixels
    assert red > 240 and green > 240
    assert not default_storage.exists(whole_path(blob.sha256, 11, "jpeg"))  # never written
