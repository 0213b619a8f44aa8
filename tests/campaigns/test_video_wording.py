"""A video campaign's manage page speaks of videos: what is being prepared (their renditions,
not "images being prepared 0 of 0"), the gold-pair help, the reports' panes."""

from __future__ import annotations

import pytest
from django.test import Client

from evalhub.campaigns.models import ImageReport, Lease, TaskKind
from evalhub.campaigns.serving.leasing import lease_report
from evalhub.campaigns.serving.rating import rate_next
from evalhub.runs.models import GenerationRun, MediaKind
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _as_video(world):
    GenerationRun.objects.filter(pk__in=[run.pk for run in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    return world


def _page(world) -> str:
    client = Client()
    client.force_login(world.scientist)
    return client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()


def _figure(html: str, term: str) -> str:
    return html.split(f"<dt>{term}</dt>", 1)[1].split("</dd>", 1)[0]


def test_a_video_campaign_page_says_videos():
    html = _page(_as_video(build_campaign(runs=2, prompts=2)))
    assert "Images being prepared" not in html
    figure = _figure(html, "Videos being converted")
    assert '<span id="preparing-none">none waiting</span>' in figure
    assert 'id="preparing-count" hidden' in figure
    assert "Two videos of the same prompt" in html and "Two images" not in html


def test_an_image_campaign_page_says_images():
    html = _page(build_campaign(runs=2, prompts=2))
    # Tiles for the largest, a display copy written by a worker for those of 2048 x 2048 to
    # 4096 px: "being tiled" would be untrue of the second.
    assert "<dt>Large images being prepared</dt>" in html and "tiled" not in html
    assert "Two images of the same prompt" in html


def test_a_best_of_k_video_report_names_the_video_pane():
    world = _as_video(build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3))
    annotator = world.annotators[0]
    payload = rate_next(annotator=annotator, campaign_id=world.campaign.pk)
    lease = Lease.objects.select_related("task__prompt").get(pk=payload["lease"])
    report = lease_report(lease=lease, side="1", note="frozen")
    assert ImageReport.objects.get().pk == report.pk
    html = _page(world)
    row = html.split(f'data-report="{report.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>video 2</td>" in row


def test_the_rating_page_names_video_panes_as_videos():
    world = _as_video(build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3))
    client = Client()
    client.force_login(world.annotator)
    page = client.get(f"/rate/{world.campaign.pk}/").content.decode()
    assert "Video 1" in page and 'alt="Video 2"' in page and "Image 1" not in page
    pairs = _as_video(build_campaign(runs=2, prompts=1))
    client.force_login(pairs.annotator)
    page = client.get(f"/rate/{pairs.campaign.pk}/").content.decode()
    assert 'alt="Left video"' in page and "Report the right video as broken" in page


def test_the_campaign_form_and_export_page_ask_about_videos():
    world = _as_video(build_campaign(runs=2, prompts=1))
    client = Client()
    client.force_login(world.scientist)
    form = client.get(f"/projects/{world.campaign.project_id}/campaigns/new/").context["form"]
    assert dict(form.fields["criteria"].choices)["overall"] == "Which video is better overall?"
    export = client.get(f"/campaigns/{world.campaign.pk}/export/").context["form"]
    assert dict(export.fields["criterion"].choices)["overall"] == (
        "Which video is better overall?")
    images = build_campaign(runs=2, prompts=1)
    client.force_login(images.scientist)
    form = client.get(f"/projects/{images.campaign.project_id}/campaigns/new/").context["form"]
    assert dict(form.fields["criteria"].choices)["overall"] == "Which image is better overall?"


def test_the_rating_page_says_what_its_media_wait_for():
    images = build_campaign(runs=2, prompts=1)
    videos = _as_video(build_campaign(runs=2, prompts=1))
    said = {}
    for medium, world in (("image", images), ("video", videos)):
        client = Client()
        client.force_login(world.annotator)
        page = client.get(f"/rate/{world.campaign.pk}/").content.decode()
        preparing = page.split('id="rate-preparing"', 1)[1].split("</section>", 1)[0]
        said[medium] = " ".join(preparing.split())
    assert ("Large images are cut into tiles or given a display copy before they can be "
            "compared.") in said["image"]
    assert "Videos are converted for the browser before they can be compared." in said["video"]
    assert "tiles" not in said["video"]
