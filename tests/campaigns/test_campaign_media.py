"""A campaign compares one medium: image runs with image runs, video runs with video runs.

The rule lives in the campaign service; the API and the campaign form both go through it, and
the form shows the message next to the runs field.
"""

from __future__ import annotations

import pytest
from django.test import Client

from evalhub.campaigns.models import Campaign
from evalhub.campaigns.services import campaign_create
from evalhub.core.errors import EvalHubError
from evalhub.runs.models import GenerationRun, MediaKind
from tests.builders import build_campaign

MIXED = "must be all image runs or all video runs"


@pytest.fixture
def world(db):
    """Three runs of one prompt set; the third made a video run."""
    built = build_campaign(runs=3, prompts=2, run_names=["stills-a", "stills-b", "clips"],
                           name="Study")
    GenerationRun.objects.filter(pk=built.runs[2].pk).update(media_kind=MediaKind.VIDEO)
    built.runs[2].refresh_from_db()
    return built


def test_the_service_refuses_image_and_video_runs_together_and_names_them(world):
    with pytest.raises(EvalHubError, match=MIXED) as refused:
        campaign_create(project=world.campaign.project, name="mixed", runs=world.runs)
    assert "video runs: clips; image runs: stills-a, stills-b" in refused.value.message
    assert not Campaign.objects.filter(name="mixed").exists()


def test_the_service_accepts_runs_of_one_medium(world):
    images = campaign_create(project=world.campaign.project, name="stills only",
                             runs=world.runs[:2])
    GenerationRun.objects.filter(pk=world.runs[1].pk).update(media_kind=MediaKind.VIDEO)
    world.runs[1].refresh_from_db()
    videos = campaign_create(project=world.campaign.project, name="clips only",
                             runs=world.runs[1:])
    assert set(images.runs.all()) == set(world.runs[:2])
    assert set(videos.runs.all()) == set(world.runs[1:])


def test_the_form_shows_the_message_next_to_the_runs(world):
    client = Client()
    client.force_login(world.scientist)
    response = client.post(f"/projects/{world.campaign.project_id}/campaigns/new/", {
        "name": "mixed", "runs": [r.pk for r in world.runs], "criteria": ["overall"],
        "pair_policy": "balanced", "judgments_per_pair": "2", "gold_rate": "0",
        "lease_seconds": "120", "open_when_built": "on"})
    assert response.status_code == 400
    errors = response.context["form"].errors.get("runs", [])
    assert len(errors) == 1 and MIXED in errors[0]
    assert 'id="id_runs_error"' in response.content.decode()
    assert not Campaign.objects.filter(name="mixed").exists()


def test_the_api_answers_400_with_the_message(world, api):
    api.force_login(world.scientist)
    response = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "mixed",
        "runs": [r.pk for r in world.runs]}, format="json")
    assert response.status_code == 400
    assert MIXED in response.json()["detail"]
    assert not Campaign.objects.filter(name="mixed").exists()

