"""The campaign leaderboard page names the model its ratings were fitted with: Bradley-Terry for
pair campaigns, Plackett-Luce for best-of-K campaigns (docs/leaderboards.md, "K-wise votes")."""

import re

import pytest
from django.test import Client

from evalhub.campaigns.models import TaskKind
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


def _header(world) -> str:
    client = Client()
    client.force_login(world.scientist)
    page = client.get(f"/dashboard/campaigns/{world.campaign.pk}/")
    assert page.status_code == 200
    found = re.search(r'<span id="fit-method">(.*?)</span>', page.content.decode(), re.S)
    assert found, "the page names no fit"
    return found.group(1)


def test_a_pair_campaign_says_bradley_terry():
    header = _header(build_campaign(runs=2, prompts=2))
    assert header == "Bradley-Terry Elo with 200-round bootstrap 95% CI"


def test_a_best_of_k_campaign_says_plackett_luce():
    world = build_campaign(runs=4, prompts=2, task_kind=TaskKind.BEST_OF_K, k=4, rank_all=True)
    header = _header(world)
    assert "Bradley-Terry" not in header
    assert header == "Plackett-Luce Elo (best-of-4 rankings) with 200-round bootstrap 95% CI"
