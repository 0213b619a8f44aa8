"""Deleting a run that a campaign compares, and the words of the refusals.

A campaign's runs (``Campaign.runs``) are what its votes and its leaderboard are about, and a
campaign cannot be edited: deleting a run silently takes it out of every campaign that names
it. So the confirmation page names those campaigns (with their votes), and the delete is
refused while a campaign that names the run is rated (active), being built, or holds votes,
on the page and through the API alike (one rule: ``workspace/deletion.py``).

The world: a campaign on the "colour" prompts over two runs, and a third run (``stray``) that
answered only the "counting" prompts, so it takes part in no task of the campaign.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from evalhub.campaigns.models import Campaign, CampaignStatus, ComparisonTask, Criterion, TaskKind
from evalhub.campaigns.services import campaign_set_status
from evalhub.runs.models import GenerationRun
from tests.builders import build_campaign, build_campaign_with_stray_run, cast_vote, logged_in
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    PromptSetFactory,
)

pytestmark = pytest.mark.django_db


def _url(kind: str, pk: int) -> str:
    return reverse("workspace-delete", kwargs={"kind": kind, "object_id": pk})


def _refusal(response) -> str:
    html = response.content.decode()
    assert 'id="delete-refused"' in html, html
    return html.split('id="delete-refused">', 1)[1].split("</p>", 1)[0].replace("&#x27;", "'")


def _removed_from(response) -> list[str]:
    """The campaigns the confirmation page says the run is taken out of, in its order."""
    html = response.content.decode()
    listed = html.split('id="delete-campaigns">', 1)[1].split("</ul>")[0]
    cells = [item.split("</li>")[0] for item in listed.split("<li>")[1:]]
    # Each name isolated from its neighbours (docs/accessibility.md, "User-written text").
    assert all(cell.startswith("<bdi>") and cell.endswith("</bdi>") for cell in cells), cells
    return [cell[len("<bdi>"):-len("</bdi>")].replace("&#x27;", "'") for cell in cells]


def _stray_campaign(*, criteria=(Criterion.OVERALL,), status: str | None = None):
    """The world (module docstring): (world, campaign, stray run)."""
    world, campaign, stray = build_campaign_with_stray_run(name="first",
                                                           criteria=list(criteria))
    assert campaign.status == CampaignStatus.ACTIVE
    assert not campaign.tasks.filter(run_a=stray).exists()
    assert not campaign.tasks.filter(run_b=stray).exists()
    if status is not None:
        campaign_set_status(campaign=campaign, status=status)
    return world, campaign, stray


def test_a_run_of_a_campaign_that_holds_votes_is_never_taken_out_of_it(api):
    world, campaign, stray = _stray_campaign()
    cast_vote(campaign, world.annotator)
    client = logged_in(world.scientist)

    page = client.get(_url("run", stray.pk))
    assert page.status_code == 200
    words = _refusal(page)
    assert "'colour study'" in words and "1 human vote" in words
    assert 'id="delete-form"' not in page.content.decode()

    refused = client.post(_url("run", stray.pk))
    assert refused.status_code == 409
    api.force_login(world.scientist)
    by_api = api.delete(f"/api/v1/runs/{stray.pk}/")
    assert by_api.status_code == 409
    assert by_api.json()["detail"] == _refusal(refused) == words

    assert GenerationRun.objects.filter(pk=stray.pk).exists()
    assert set(campaign.runs.values_list("pk", flat=True)) == {
        *(run.pk for run in world.runs), stray.pk}


def test_a_run_of_an_active_campaign_without_votes_waits_for_the_campaign_to_be_deleted():
    world, campaign, stray = _stray_campaign()
    refused = logged_in(world.scientist).post(_url("run", stray.pk))
    assert refused.status_code == 409
    words = _refusal(refused)
    assert "'colour study'" in words and "active" in words
    # Campaigns cannot be edited: the way out is the campaign's own delete.
    assert "close" in words.lower() and "delete the campaign" in words.lower()
    assert "remove" not in words.lower()
    assert campaign.runs.filter(pk=stray.pk).exists()


def test_a_paused_campaign_with_votes_still_keeps_its_runs():
    world, campaign, stray = _stray_campaign()
    cast_vote(campaign, world.annotator)
    campaign_set_status(campaign=campaign, status=CampaignStatus.PAUSED)
    assert logged_in(world.scientist).post(_url("run", stray.pk)).status_code == 409
    assert campaign.runs.filter(pk=stray.pk).exists()


def test_the_confirmation_names_the_campaigns_the_run_is_taken_out_of():
    world, campaign, stray = _stray_campaign(status=CampaignStatus.CLOSED)
    client = logged_in(world.scientist)
    page = client.get(_url("run", stray.pk))
    assert 'id="delete-form"' in page.content.decode()
    assert _removed_from(page) == ["colour study (closed, 0 human votes)"]

    assert client.post(_url("run", stray.pk)).status_code == 302
    assert not GenerationRun.objects.filter(pk=stray.pk).exists()
    # The campaign stays, with its other runs and its tasks.
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert set(campaign.runs.values_list("pk", flat=True)) == {run.pk for run in world.runs}


def test_a_run_that_no_campaign_names_lists_no_campaign():
    world = build_campaign(runs=2, prompts=2)
    project = world.campaign.project
    spare = GenerationRunFactory(checkpoint=CheckpointFactory(model__project=project),
                                 prompt_set=world.runs[0].prompt_set, name="spare")
    html = logged_in(world.scientist).get(_url("run", spare.pk)).content.decode()
    assert 'id="delete-form"' in html and 'id="delete-campaigns"' not in html


def test_a_campaign_is_refused_with_its_votes_counted_as_progress_counts_them(api):
    # Two questions per vote: two judgment rows, one vote.
    world, campaign, _ = _stray_campaign(criteria=(Criterion.OVERALL, Criterion.AESTHETICS))
    cast_vote(campaign, world.annotator)
    cast_vote(campaign, world.annotators[1])
    api.force_login(world.owner)
    refused = api.delete(f"/api/v1/campaigns/{campaign.pk}/")
    assert refused.status_code == 409
    assert "holds 2 human votes" in refused.json()["detail"]
    page = logged_in(world.owner).post(_url("campaign", campaign.pk))
    assert "holds 2 human votes" in _refusal(page)
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_a_run_shown_only_inside_best_of_k_sets_is_told_to_delete_their_campaign():
    # Its images are members of the sets (TaskImage), not a task's first two images.
    world = build_campaign(runs=3, prompts=2, name="sets of three",
                           task_kind=TaskKind.BEST_OF_K, k=3)
    campaign_set_status(campaign=world.campaign, status=CampaignStatus.CLOSED)
    third = max(world.runs, key=lambda run: run.pk)
    assert not ComparisonTask.objects.filter(run_b=third).exists()
    words = _refusal(logged_in(world.scientist).post(_url("run", third.pk)))
    assert "2 comparison tasks show its images" in words and "'sets of three'" in words
    assert "delete the campaign" in words.lower()
    assert GenerationRun.objects.filter(pk=third.pk).exists()


def test_an_object_one_other_object_refers_to_is_refused_in_the_singular():
    world = build_campaign(runs=2, prompts=1, name="solo")
    prompt_set = PromptSetFactory(project=world.campaign.project)
    GenerationRunFactory(checkpoint=world.runs[0].checkpoint, prompt_set=prompt_set)
    words = _refusal(logged_in(world.scientist).post(_url("prompt-set", prompt_set.pk)))
    assert "1 generation run refers to it" in words


def test_a_run_shown_in_tasks_of_a_finished_campaign_is_told_to_delete_that_campaign():
    # Comparison tasks can be neither deleted nor changed on their own: they go with their
    # campaign, so the refusal says that rather than "delete or change those first".
    world = build_campaign(runs=2, prompts=2, name="finished")
    campaign_set_status(campaign=world.campaign, status=CampaignStatus.CLOSED)
    words = _refusal(logged_in(world.scientist).post(_url("run", world.runs[0].pk)))
    assert "comparison task" in words and "'finished'" in words
    assert "delete or change" not in words
    assert "delete the campaign" in words.lower()
