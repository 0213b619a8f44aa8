"""The campaign page's per-row links and forms point where Django's URL names do: the gold
pairs' image links and remove buttons, and each annotator's exclude button."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from evalhub.campaigns.building.gold import gold_task_add
from tests.builders import build_campaign, cast_vote

pytestmark = pytest.mark.django_db


def test_gold_pair_rows_and_exclude_buttons_carry_the_named_urls():
    world = build_campaign(runs=2, prompts=3, annotators=2)
    task = world.tasks[0]
    gold = gold_task_add(campaign=world.campaign, image_a=task.image_a, image_b=task.image_b,
                         answer="a")
    cast_vote(world.campaign, world.annotator)
    client = Client()
    client.force_login(world.scientist)

    html = client.get(reverse("campaign-manage",
                              kwargs={"campaign_id": world.campaign.pk})).content.decode()

    for image_id in (gold.image_a_id, gold.image_b_id):
        assert f'href="{reverse("gallery-image", kwargs={"image_id": image_id})}"' in html
    remove = reverse("campaign-manage-gold-remove",
                     kwargs={"campaign_id": world.campaign.pk, "task_id": gold.pk})
    assert f'action="{remove}#gold"' in html  # back at the section, refused or done
    exclude = reverse("campaign-manage-exclude", kwargs={"campaign_id": world.campaign.pk})
    assert f'action="{exclude}#quality"' in html
    assert client.post(remove).status_code == 302


def test_each_step_of_the_scientists_work_links_to_the_next():
    # Set-up (workspace) -> campaigns -> leaderboard -> manage and export, and back: a
    # scientist finds each next step from the page they are on.
    world = build_campaign(runs=2, prompts=2)
    project = world.campaign.project_id
    client = Client()
    client.force_login(world.scientist)

    def links(url: str) -> str:
        response = client.get(url)
        assert response.status_code == 200, url
        return response.content.decode()

    campaigns = reverse("campaigns-manage", kwargs={"project_id": project})
    workspace = links(reverse("workspace-runs", kwargs={"project_id": project}))
    assert f'href="{campaigns}"' in workspace
    listed = links(campaigns)
    assert f'href="{reverse("workspace-runs", kwargs={"project_id": project})}"' in listed
    board = links(reverse("dashboard-campaign", kwargs={"campaign_id": world.campaign.pk}))
    assert f'href="{reverse("campaign-manage", kwargs={"campaign_id": world.campaign.pk})}"' \
        in board
    assert f'href="{reverse("campaign-export-page", kwargs={"campaign_id": world.campaign.pk})}"' \
        in board
    members = links(reverse("project-members", kwargs={"project_id": project}))
    assert f'href="{reverse("workspace-models", kwargs={"project_id": project})}"' in members
    assert f'href="{campaigns}"' in members
