"""The campaign leaderboard page names the model its ratings were fitted with: Bradley-Terry for
pair campaigns, Plackett-Luce for best-of-K campaigns (docs/leaderboards.md, "K-wise votes"),
in its header and in the legend of its Elo chart alike."""

import json
import re

import pytest
from django.test import Client

from evalhub.campaigns.models import TaskKind
from tests.builders import build_campaign, cast_vote, rank_every_set

pytestmark = pytest.mark.django_db


def _page(world) -> str:
    client = Client()
    client.force_login(world.scientist)
    page = client.get(f"/dashboard/campaigns/{world.campaign.pk}/")
    assert page.status_code == 200
    return page.content.decode()


def _header(world) -> str:
    found = re.search(r'<span id="fit-method">(.*?)</span>', _page(world), re.S)
    assert found, "the page names no fit"
    return found.group(1)


def _elo_legend(page: str) -> str:
    """The name of the Elo chart's rating trace (the figure is embedded as JSON)."""
    found = re.search(r'<script id="elo-data" type="application/json">(.*?)</script>', page,
                      re.S)
    assert found, "the page has no Elo chart"
    return json.loads(found.group(1))["data"][0]["name"]


def test_a_pair_campaign_says_bradley_terry():
    header = _header(build_campaign(runs=2, prompts=2))
    assert header == "Bradley-Terry Elo with 200-round bootstrap 95% CI"


def test_a_best_of_k_campaign_says_plackett_luce():
    world = build_campaign(runs=4, prompts=2, task_kind=TaskKind.BEST_OF_K, k=4, rank_all=True)
    header = _header(world)
    assert "Bradley-Terry" not in header
    assert header == "Plackett-Luce Elo (best-of-4 rankings) with 200-round bootstrap 95% CI"


def test_the_elo_charts_legend_names_the_same_model_as_the_header():
    pairs = build_campaign(runs=2, prompts=3)
    for annotator in pairs.annotators:
        cast_vote(pairs.campaign, annotator)
    page = _page(pairs)
    assert _elo_legend(page) == "Bradley-Terry Elo, 95% CI"

    best_of_4 = build_campaign(runs=4, prompts=2, task_kind=TaskKind.BEST_OF_K, k=4,
                               rank_all=True)
    rank_every_set(best_of_4)
    page = _page(best_of_4)
    legend = _elo_legend(page)
    assert "Bradley-Terry" not in legend
    assert legend == "Plackett-Luce Elo (best-of-4 rankings), 95% CI"
    assert _header(best_of_4).startswith("Plackett-Luce Elo (best-of-4 rankings) with ")
