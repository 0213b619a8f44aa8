"""Numbers past what a setting means or a column holds are refused with a 400 that says which
input, never stored (where no JSON answer could show them) nor passed to the database (500)."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.apps import apps

from evalhub.campaigns.models import AnnotatorFlag, Campaign
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=1, annotators=1)


@pytest.mark.parametrize("threshold", ["1e300", "1.5"])
def test_an_lpips_threshold_past_any_lpips_distance_is_refused(api, world, threshold):
    # 1e300 used to be stored: every pair skipped as near-identical, an active campaign with
    # no task. (JSON's 1e400 is infinity, which the API's number field refuses itself.)
    api.force_authenticate(world.scientist)
    runs = ", ".join(str(run.pk) for run in world.runs)
    body = (f'{{"project": {world.campaign.project_id}, "name": "far", "runs": [{runs}], '
            f'"min_lpips_distance": {threshold}}}')
    response = api.post("/api/v1/campaigns/", body, content_type="application/json")
    assert response.status_code == 400
    assert "min_lpips_distance) must be a number from 0 to 1" in response.json()["detail"]
    assert not Campaign.objects.filter(name="far").exists()


def test_a_campaign_stored_with_an_infinite_threshold_is_answered_again_once_migrated(api,
                                                                                    world):
    # Stored by the command before it refused infinity: every campaign list of the project
    # answered 500 ("Out of range float values are not JSON compliant").
    Campaign.objects.filter(pk=world.campaign.pk).update(min_lpips_distance=float("inf"))
    migration = import_module("evalhub.campaigns.migrations.0014_lpips_threshold_at_most_one")
    migration.lower_thresholds(apps, None)
    api.force_authenticate(world.scientist)
    listed = api.get("/api/v1/campaigns/", {"project": world.campaign.project_id})
    assert listed.status_code == 200
    assert listed.json()["results"][0]["min_lpips_distance"] == 1.0
    assert api.get(f"/api/v1/campaigns/{world.campaign.pk}/").status_code == 200


@pytest.mark.parametrize("annotator", [2**63, 10**30, -(10**30), 0])
def test_an_annotator_id_no_user_can_have_is_refused_naming_the_field(api, world, annotator):
    # 2**63 and beyond used to reach the database driver: OverflowError, a 500 page.
    api.force_authenticate(world.scientist)
    response = api.post(f"/api/v1/campaigns/{world.campaign.pk}/exclude/",
                        {"annotator": annotator}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["annotator"]
    assert not AnnotatorFlag.objects.exists()


def test_a_large_annotator_id_that_fits_is_answered_like_any_unknown_one(api, world):
    api.force_authenticate(world.scientist)
    response = api.post(f"/api/v1/campaigns/{world.campaign.pk}/exclude/",
                        {"annotator": 2**63 - 1}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [response.json()["detail"]]
    assert response.json()["detail"].startswith("annotator: ")
