"""Campaign states: building -> draft or active -> paused -> closed, as the scientist API allows;
annotators are served, and may vote, undo, skip or report, only while a campaign is active."""

import json
import uuid

import pytest

from evalhub.campaigns.models import CampaignStatus, ImageReport, Judgment, Lease, LeaseStatus
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _campaign_url(world, action=""):
    return f"/api/v1/campaigns/{world.campaign.pk}/{action + '/' if action else ''}"


def _rate_url(world, suffix=""):
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


# What an annotator is told, by status: a paused campaign may open again; a closed or failed
# one is over (never "is failed", never a promise that it reopens).
NOT_OPEN_SAYS = {
    CampaignStatus.PAUSED: "is paused, not open for rating until it is resumed",
    CampaignStatus.CLOSED: "is over: it was closed and takes no more votes",
    CampaignStatus.FAILED: "is over: it failed and takes no votes",
}


def _set(api, world, action):
    api.force_login(world.scientist)
    return api.post(_campaign_url(world, action), {}, format="json")


def test_a_campaign_created_as_a_draft_is_not_served_until_it_is_opened(api):
    world = build_campaign(prompts=2, open_when_built=False)
    assert world.campaign.status == CampaignStatus.DRAFT
    api.force_login(world.annotators[0])
    assert api.post(_rate_url(world, "next/"), {}, format="json").status_code == 400
    assert _set(api, world, "resume").status_code == 409  # resume is for paused campaigns
    opened = _set(api, world, "open")
    assert opened.status_code == 200 and opened.json()["status"] == "active"
    api.force_login(world.annotators[0])
    assert api.post(_rate_url(world, "next/"), {}, format="json").status_code == 201


@pytest.mark.parametrize(("start", "action", "allowed"), [
    (CampaignStatus.ACTIVE, "pause", True), (CampaignStatus.ACTIVE, "close", True),
    (CampaignStatus.ACTIVE, "resume", False), (CampaignStatus.ACTIVE, "open", False),
    (CampaignStatus.PAUSED, "resume", True), (CampaignStatus.PAUSED, "close", True),
    (CampaignStatus.PAUSED, "open", False), (CampaignStatus.CLOSED, "resume", False),
    (CampaignStatus.CLOSED, "pause", False), (CampaignStatus.CLOSED, "open", False),
    (CampaignStatus.FAILED, "resume", False), (CampaignStatus.BUILDING, "resume", False),
])
def test_only_the_documented_status_changes_are_allowed(api, start, action, allowed):
    world = build_campaign(prompts=1)
    world.campaign.status = start
    world.campaign.save(update_fields=["status"])
    response = _set(api, world, action)
    assert response.status_code == (200 if allowed else 409), response.content
    world.campaign.refresh_from_db()
    assert (world.campaign.status != start) == allowed
    if not allowed:
        assert f"is {start}" in response.json()["detail"]


@pytest.mark.parametrize("status", [CampaignStatus.PAUSED, CampaignStatus.CLOSED])
def test_nothing_an_annotator_does_is_accepted_unless_the_campaign_is_active(api, status):
    world = build_campaign(prompts=4)
    annotator = world.annotators[0]
    api.force_login(annotator)
    voted = api.post(_rate_url(world, "next/"), {}, format="json").json()
    client_id = str(uuid.uuid4())
    api.post(_rate_url(world, "votes/"), {"client_id": client_id, "lease": voted["lease"],
                                          "answers": {"overall": "left"}}, format="json")
    held = api.post(_rate_url(world, "next/"), {"exclude": []}, format="json").json()
    world.campaign.status = status
    world.campaign.save(update_fields=["status"])

    vote = api.post(_rate_url(world, "votes/"), {
        "client_id": str(uuid.uuid4()), "lease": held["lease"], "answers": {"overall": "left"}},
        format="json")
    undo = api.post(_rate_url(world, "votes/undo/"), {"client_id": client_id}, format="json")
    skip = api.post(_rate_url(world, f"leases/{held['lease']}/skip/"), {}, format="json")
    report = api.post(_rate_url(world, f"leases/{held['lease']}/report/"), {"side": "left"},
                      format="json")
    lease = api.post(_rate_url(world, "next/"), {"exclude": [held["lease"]]}, format="json")
    for response in (vote, undo, skip, report, lease):
        assert response.status_code == 400, response.content
        assert NOT_OPEN_SAYS[status] in response.json()["detail"]
        # What the rating page acts on: "paused or closed", not "you have rated everything".
        assert response.json()["code"] == "campaign_not_open"
    assert Judgment.objects.filter(retracted_at__isnull=True).count() == 1
    assert not ImageReport.objects.exists()
    assert Lease.objects.get(pk=held["lease"]).status == LeaseStatus.ACTIVE


@pytest.mark.parametrize("status", list(NOT_OPEN_SAYS))
def test_the_rating_page_of_a_campaign_that_is_not_open_says_so_in_its_first_task(client, status):
    world = build_campaign(prompts=2)
    world.campaign.status = status
    world.campaign.save(update_fields=["status"])
    client.force_login(world.annotators[0])
    html = client.get(f"/rate/{world.campaign.pk}/").content.decode()
    script = html.split('<script id="rate-first" type="application/json">', 1)[1]
    first = json.loads(script.split("</script>", 1)[0])
    assert first["done"] is True and first["code"] == "campaign_not_open"
    assert first["detail"] == f"Campaign 'campaign' {NOT_OPEN_SAYS[status]}."


def test_a_campaign_listing_a_run_twice_or_an_overlong_category_is_refused(api):
    world = build_campaign(prompts=1)
    api.force_login(world.scientist)
    runs = [world.runs[0].pk, world.runs[0].pk, world.runs[1].pk]
    twice = api.post("/api/v1/campaigns/", {"project": world.campaign.project_id,
                                            "name": "twice", "runs": runs}, format="json")
    assert twice.status_code == 400 and "each run once" in twice.json()["detail"]
    long = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "long", "runs": runs[1:],
        "prompt_category": "c" * 101}, format="json")
    assert long.status_code == 400 and "prompt_category" in long.json()
    assert world.campaign.project.campaigns.count() == 1


def test_a_category_no_prompt_of_the_runs_has_is_a_400_naming_it_and_nothing_is_created(api):
    world = build_campaign(prompts=2)
    api.force_login(world.scientist)
    refused = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "cafe", "prompt_category": "Colour",
        "runs": [run.pk for run in world.runs]}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        "prompt_category: No prompt of the runs' prompt set has the category 'Colour'; its "
        "categories: 'colour', 'counting'."]
    assert not world.campaign.project.campaigns.filter(name="cafe").exists()


def test_a_failed_campaign_is_deleted_through_the_api_and_frees_its_name(api):
    # A build that failed ("no images on common prompts") holds the campaign's name; the
    # campaigns page could delete it, the API could not.
    world = build_campaign(prompts=2)
    world.campaign.status = CampaignStatus.FAILED
    world.campaign.save(update_fields=["status"])
    url = _campaign_url(world)
    api.force_login(world.annotators[0])
    assert api.delete(url).status_code == 404  # annotators do not see campaigns here
    api.force_login(world.scientist)
    assert api.delete(url).status_code == 204
    assert not type(world.campaign).objects.filter(project=world.campaign.project,
                                                   name=world.campaign.name).exists()


def test_a_campaign_holding_human_votes_is_never_deleted(api):
    world = build_campaign(prompts=2)
    api.force_login(world.annotators[0])
    task = api.post(_rate_url(world, "next/"), {}, format="json").json()
    api.post(_rate_url(world, "votes/"), {"client_id": str(uuid.uuid4()), "lease": task["lease"],
                                          "answers": {"overall": "left"}}, format="json")
    api.force_login(world.scientist)
    refused = api.delete(_campaign_url(world))
    assert refused.status_code == 409 and "Close the campaign instead" in refused.json()["detail"]
    assert Judgment.objects.filter(campaign=world.campaign).count() == 1
