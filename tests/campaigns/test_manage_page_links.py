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
    assert f'action="{remove}"' in html
    exclude = reverse("campaign-manage-exclude", kwargs={"campaign_id": world.campaign.pk})
    assert f'action="{exclude}"' in html
    assert client.post(remove).status_code == 302
