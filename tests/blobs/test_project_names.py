"""Names clients see are per project (blobs/names.py): the same bytes in two projects are two
unrelated names, each served only to the members of its project; the blobs' shared internal
names answer 404; imports count duplicates within the caller's project only.

The attack this closes: an annotator of project A who owns project B imports a suspected
original into B and compares the name B's gallery (or B's rating page) shows with the names of
A's blind rating page, or reads the import's duplicate count."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.names import (
    display_token,
    project_display_name,
    project_video_name,
    resolve_display_name,
    resolve_video_name,
)
from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.tile_grants import tile_grant
from evalhub.blobs.tiles import blob_build_tiles
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.campaigns.serving.rating import rate_next
from evalhub.projects.models import Role
from evalhub.runs.gallery.selectors import GalleryQuery, gallery_page
from evalhub.runs.models import Image
from tests.blobs.test_tiles import _gradient_png
from tests.builders import build_campaign
from tests.factories import GenerationRunFactory, MembershipFactory, PromptFactory, png_bytes
from tests.runs.helpers import make_zip, manifest_csv
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


def _same_bytes(prompt: int, run: int) -> bytes:
    return png_bytes(color=(10 + 40 * run, 20 + prompt, 30))


@pytest.fixture
def two_projects():
    """Project A and project B hold the same image files (one blob each, shared); A's first
    annotator is also B's owner: the person the defect let link A's images to B's files."""
    a = build_campaign(runs=2, prompts=1, image_bytes=_same_bytes, name="blind A")
    b = build_campaign(runs=2, prompts=1, image_bytes=_same_bytes, name="own B")
    insider = a.annotator
    MembershipFactory(project=b.campaign.project, user=insider, role=Role.OWNER)
    return a, b, insider


def _sides(payload: dict) -> list[dict]:
    return [payload["left"], payload["right"]]


# ---------------------------------------------------------------- names


def test_a_name_reads_back_to_its_project_and_blob_and_nothing_else_does():
    name = project_display_name(3, 41)
    assert len(name) == 64 and int(name, 16) >= 0
    assert resolve_display_name(name) == (3, 41)
    assert resolve_video_name(name) is None  # a video's name space is another
    assert resolve_video_name(project_video_name(3, 41)) == (3, 41)
    assert project_display_name(4, 41) != name and project_display_name(3, 42) != name
    for other in (display_token("ab" * 32), "0" * 64, "f" * 64, name[:-1] + "0", "xyz"):
        if other != name:
            assert resolve_display_name(other) is None


def test_the_same_bytes_in_two_projects_get_unrelated_names_in_each_payload(two_projects):
    a, b, insider = two_projects
    assert ImageBlob.objects.count() == 2  # stored once, shared by both projects
    in_a = rate_next(annotator=insider, campaign_id=a.campaign.pk)
    in_b = rate_next(annotator=insider, campaign_id=b.campaign.pk)
    urls_a = {side["url"] for side in _sides(in_a)}
    urls_b = {side["url"] for side in _sides(in_b)}
    assert len(urls_a) == len(urls_b) == 2
    assert not urls_a & urls_b
    text = str(in_a) + str(in_b)
    for blob in ImageBlob.objects.all():
        assert blob.display_token not in text and blob.sha256 not in text


def test_the_gallery_of_another_project_shows_other_names_than_the_blind_page(two_projects):
    a, b, insider = two_projects
    shown_in_a = {side["url"] for side in _sides(rate_next(annotator=insider,
                                                           campaign_id=a.campaign.pk))}
    page = gallery_page(project_id=b.campaign.project_id,
                        query=GalleryQuery(left=b.runs[0].pk, right=b.runs[1].pk))
    in_gallery = {image.url for item in page.items for image in (item.left, item.right)}
    assert len(in_gallery) == 2 and not in_gallery & shown_in_a
    client = Client()
    client.force_login(insider)  # B's owner: the gallery page itself
    html = client.get(f"/gallery/{b.campaign.project_id}/").content.decode()
    assert all(url in html for url in in_gallery)
    assert not any(url in html for url in shown_in_a)


def test_members_of_another_project_get_404_for_a_projects_names(two_projects):
    a, b, _ = two_projects
    url_a = rate_next(annotator=a.annotators[1], campaign_id=a.campaign.pk)["left"]["url"]
    member_of_b = b.owner  # holds the same bytes in B, under B's names
    client = Client()
    client.force_login(member_of_b)
    assert client.get(url_a).status_code == 404
    _, project, blob_id = None, *resolve_display_name(url_a.split("/")[-1].split(".")[0])
    assert project == a.campaign.project_id
    own = f"/media/display/{project_display_name(b.campaign.project_id, blob_id)}.webp"
    assert client.get(own).status_code == 200  # the same pixels, under B's own name
    client.force_login(a.annotators[1])
    assert client.get(url_a).status_code == 200
    assert client.get(own).status_code == 404  # and A's members not under B's


def test_the_old_global_name_answers_404_to_everybody(two_projects, django_user_model):
    a, _, insider = two_projects
    blob = a.runs[0].images.get().blob
    old = f"/media/display/{blob.display_token}.webp"
    for user in (insider, a.scientist, a.owner,
                 django_user_model.objects.create_superuser("root", "r@x.test", "pw")):
        client = Client()
        client.force_login(user)
        assert client.get(old).status_code == 404


def test_superusers_still_receive_display_copies_for_the_admin(two_projects,
                                                              django_user_model):
    a, _, _ = two_projects
    image = a.runs[0].images.get()
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.test", "pw"))
    page = client.get("/admin/runs/image/").content.decode()
    url = f"/media/display/{project_display_name(image.run.project_id, image.blob_id)}.webp"
    assert url in page
    assert client.get(url).status_code == 200
    assert client.get(url.replace(".webp", ".png")).status_code == 404


# ---------------------------------------------------------------- tiles


def test_tiles_are_served_under_per_project_names_to_members_only(client):
    a = build_campaign(runs=2, prompts=1, image_bytes=lambda p, r: _gradient_png(4200 + r, 300))
    b = build_campaign(runs=2, prompts=1, image_bytes=lambda p, r: _gradient_png(4200 + r, 300))
    for image in Image.objects.filter(run__in=a.runs):
        assert blob_build_tiles(image.blob)
    cache.clear()  # the campaigns' readiness was cached before the pyramids existed
    client.force_login(a.annotator)
    payload = client.post(f"/api/v1/rate/{a.campaign.pk}/next/", {},
                          content_type="application/json").json()
    pyramid = payload["left"]["pyramid"]
    tile = f"{pyramid['url']}13/0_0.{pyramid['format']}"
    assert client.get(tile + pyramid["query"]).status_code == 200  # by grant
    assert client.get(payload["left"]["tiles"]).status_code == 200  # by the access rule
    name = pyramid["url"].split("/")[-2].removesuffix("_files")
    project_id, blob_id = resolve_display_name(name)
    assert project_id == a.campaign.project_id
    blob = ImageBlob.objects.get(pk=blob_id)

    client.force_login(b.owner)  # B holds the same bytes
    assert client.get(tile).status_code == 404
    assert client.get(payload["left"]["tiles"]).status_code == 404
    # a grant B's owner got for B's name of the blob does not open A's name
    assert client.get(tile + "?g=" + tile_grant(
        project_display_name(b.campaign.project_id, blob_id), b.owner.pk)).status_code == 404
    own = f"/rate/tiles/{project_display_name(b.campaign.project_id, blob_id)}.dzi"
    assert client.get(own).status_code == 200
    assert client.get(f"/rate/tiles/{blob.display_token}.dzi").status_code == 404


# ---------------------------------------------------------------- videos


def test_video_renditions_are_served_under_per_project_names_to_members_only():
    data = video_bytes(frames=6, seed=5)
    video = video_store(data=data, info=video_inspect(data, name="v.mp4"), name="v.mp4")
    worlds = [build_campaign(runs=2, prompts=1, name=f"videos {i}") for i in range(2)]
    for world in worlds:  # both projects' first run hold the same video
        Image.objects.filter(run=world.runs[0]).update(blob=video.poster, video=video)
    assert blobs_make_video_renditions([video.pk]) == 1
    a, b = worlds
    payload = rate_next(annotator=a.annotator, campaign_id=a.campaign.pk)
    shown = next(side["video"] for side in _sides(payload) if side["video"])
    assert resolve_video_name(shown["url"].split("/")[-1].removesuffix(".webm")) == (
        a.campaign.project_id, video.pk)
    in_b = rate_next(annotator=b.annotator, campaign_id=b.campaign.pk)
    shown_b = next(side["video"] for side in _sides(in_b) if side["video"])
    assert shown_b["url"] != shown["url"] and shown_b["poster"] != shown["poster"]
    video = VideoBlob.objects.get(pk=video.pk)
    assert video.rendition_token not in str(payload) + str(in_b)

    client = Client()
    client.force_login(a.annotator)
    # No response names the shared storage file either (Django's FileResponse put it in
    # Content-Disposition): whole, by byte range, the strip and the poster.
    whole = client.get(shown["url"])
    ranged = client.get(shown["url"], HTTP_RANGE="bytes=0-99")
    strip = client.get(shown["url"].replace(".webm", "-strip.webp"))
    poster = client.get(shown["poster"])
    assert (whole.status_code, ranged.status_code, strip.status_code, poster.status_code) == (
        200, 206, 200, 200)
    poster_token = ImageBlob.objects.get(pk=video.poster_id).display_token
    for response in (whole, ranged, strip, poster):
        headers = str(dict(response.headers))
        assert video.rendition_token not in headers and poster_token not in headers
        assert "Content-Disposition" not in response.headers
    client.force_login(b.annotator)
    for url in (shown["url"], shown["url"].replace(".webm", "-strip.webp"), shown["poster"]):
        assert client.get(url).status_code == 404
    assert client.get(shown_b["url"]).status_code == 200
    assert client.get(f"/media/video/{video.rendition_token}.webm").status_code == 404


# ---------------------------------------------------------------- imports


def _archive(files: dict[str, bytes], prompt: str) -> io.BytesIO:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        for name, data in files.items():
            handle.writestr(name, data)
        handle.writestr("manifest.csv", manifest_csv(
            [(name, prompt, seed) for seed, name in enumerate(files)]))
    archive.seek(0)
    archive.name = "run.zip"
    return archive


def test_import_counts_duplicates_within_the_callers_project_only(api, two_projects):
    a, _, insider = two_projects
    held_in_a = a.runs[0].images.get().blob
    data = _same_bytes(0, 0)
    assert ImageBlob.objects.filter(sha256=held_in_a.sha256).exists()
    # A third project of the insider, which holds none of these bytes.
    c = build_campaign(runs=2, prompts=1, image_bytes=lambda p, r: png_bytes(color=(1, 2, 3)))
    MembershipFactory(project=c.campaign.project, user=insider, role=Role.OWNER)
    prompt = PromptFactory(prompt_set=c.runs[0].prompt_set, text="suspected")
    checkpoint = c.runs[0].checkpoint
    run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt.prompt_set)
    api.force_authenticate(insider)
    first = api.post(f"/api/v1/runs/{run.pk}/import-images/",
                     {"archive": _archive({"x.png": data}, "suspected")}, format="multipart")
    assert first.status_code == 201, first.content
    # The bytes exist in A and B: nothing in the answer says so.
    assert first.json() == {"images_created": 1, "blobs_created": 1,
                            "duplicates_of_existing_blobs": 0,
                            "files_skipped": 0, "skipped_files": []}
    assert ImageBlob.objects.filter(sha256=held_in_a.sha256).count() == 1  # stored once
    second_run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt.prompt_set)
    second = api.post(f"/api/v1/runs/{second_run.pk}/import-images/",
                      {"archive": _archive({"x.png": data}, "suspected")}, format="multipart")
    # Now the project holds them itself: a duplicate within the project.
    assert second.json() == {"images_created": 1, "blobs_created": 0,
                             "duplicates_of_existing_blobs": 1,
                             "files_skipped": 0, "skipped_files": []}


def test_the_import_command_counts_within_the_project(tmp_path, two_projects):
    c = build_campaign(runs=2, prompts=1, image_bytes=lambda p, r: png_bytes(color=(4, 5, 6)))
    run = c.runs[0]
    prompt = PromptFactory(prompt_set=run.prompt_set, text="suspected")
    archive = make_zip(tmp_path / "x.zip", {
        "x.png": _same_bytes(0, 0), "manifest.csv": manifest_csv([("x.png", "suspected", 0)])})
    options = ["--project", c.campaign.project.slug, "--model", run.checkpoint.model.name,
               "--checkpoint", run.checkpoint.name, "--prompt-set", prompt.prompt_set.name]
    out = io.StringIO()
    call_command("import_images", str(archive), "--run", "probe", *options, stdout=out)
    assert "1 new to this project, 0 already in this project" in out.getvalue()  # A, B: unsaid
    out = io.StringIO()
    call_command("import_images", str(archive), "--run", "probe-2", *options, stdout=out)
    assert "0 new to this project, 1 already in this project" in out.getvalue()
