"""manage.py campaign: a campaign's progress in a terminal, and its status changes."""

import io

import pytest
from django.core.management import CommandError, call_command

from evalhub.campaigns.models import CampaignStatus
from tests.builders import build_campaign, cast_vote

pytestmark = pytest.mark.django_db


def _campaign(*args: str) -> str:
    out = io.StringIO()
    call_command("campaign", *args, stdout=out)
    return out.getvalue()


def test_progress_counts_tasks_votes_and_annotators():
    world = build_campaign(runs=2, prompts=3, annotators=2, judgments_per_pair=2)
    first, second = world.annotators
    for annotator in (first, first, second):
        cast_vote(world.campaign, annotator)
    text = _campaign(str(world.campaign.pk), "--per-annotator")
    lines = text.splitlines()
    assert lines[0] == (f"Campaign {world.campaign.pk} 'campaign': 2 runs, pairs, balanced pair "
                        f"policy. Project {world.campaign.project.slug}.")
    assert lines[1] == "3 tasks built; status active."
    assert lines[2] == ("Votes: 3 of 6 needed (0 tasks complete), 3 human votes by 2 "
                        "annotators; 0 gold tasks.")
    assert lines[3] == f"Annotators rate it at /rate/{world.campaign.pk}/."
    assert lines[4].startswith(f"  {first.username}: 2 votes (0 on gold pairs), last 20")
    assert lines[5].startswith(f"  {second.username}: 1 vote (0 on gold pairs), last 20")


def test_the_status_changes_follow_the_services_transitions():
    world = build_campaign(runs=2, prompts=1)
    campaign_id = str(world.campaign.pk)
    assert "Campaign " + campaign_id + ": active -> paused." in _campaign(
        campaign_id, "--set-status", "paused")
    text = _campaign(campaign_id)
    assert "status paused" in text and "/rate/" not in text  # nobody is served while paused
    assert "paused -> active" in _campaign(campaign_id, "--set-status", "active")
    assert "active -> closed" in _campaign(campaign_id, "--set-status", "closed")
    with pytest.raises(CommandError, match="is closed; it cannot become active"):
        _campaign(campaign_id, "--set-status", "active")
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.CLOSED


def test_a_status_that_cannot_be_set_is_refused_naming_those_that_can():
    world = build_campaign(runs=2, prompts=1)
    with pytest.raises(CommandError) as refused:
        _campaign(str(world.campaign.pk), "--set-status", "closed_")
    message = str(refused.value)
    assert "invalid choice: 'closed_' (choose from 'active', 'closed', 'paused')" in message
    assert "CampaignStatus" not in message


def test_a_building_campaign_says_what_it_waits_for():
    world = build_campaign(runs=2, prompts=1)
    world.campaign.tasks.all().delete()
    type(world.campaign).objects.filter(pk=world.campaign.pk).update(
        status=CampaignStatus.BUILDING, build_report={})
    assert "Building: its tasks are queued for a worker." in _campaign(str(world.campaign.pk))


def test_an_unknown_campaign_is_a_one_line_error():
    with pytest.raises(CommandError, match="No campaign with id 424242"):
        _campaign("424242")
