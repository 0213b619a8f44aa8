"""Every run-level metric value a leaderboard, dashboard or the ``leaderboard`` command shows
says how it was computed: reference set, backbone and settings (``computed_as`` in words). Two
boards of one run may choose different ways (FID on 2048-d features on one, 64-d on the other),
and each says which one it chose."""

from __future__ import annotations

import html
import io
import json

import pytest
from django.core.management import call_command
from django.test import Client

from evalhub.campaigns.services import campaign_create
from evalhub.evaluation.models import RunMetric
from evalhub.runs.models import ReferenceSet
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db

WAY_2048 = "reference set “coco” · backbone inception-v3-fid/pool3 · 2048-d features"
WAY_64 = "reference set “coco” · backbone inception-v3-fid/64 · 64-d features"


def _fid(run, value: float, dim: int, reference_set) -> RunMetric:
    layer = "pool3" if dim == 2048 else str(dim)
    return RunMetric.objects.create(
        run=run, metric="fid", value=value, reference_set=reference_set,
        backbone_id=f"inception-v3-fid/{layer}", weights_sha256="0" * 64, calibrated=True,
        n_images=10, details={"dim": dim})


@pytest.fixture
def world():
    """alpha has FID both ways; beta and gamma on 2048-d features; delta on 64-d only. The
    campaign of all four shows the 2048-d FIDs; a second campaign of alpha and delta the 64-d
    ones."""
    world = build_campaign(runs=4, prompts=2, annotators=1,
                           run_names=["alpha", "beta", "gamma", "delta"])
    alpha, beta, gamma, delta = world.runs
    coco = ReferenceSet.objects.create(project=world.campaign.project, name="coco")
    for run, value in ((alpha, 11.5), (beta, 13.25), (gamma, 17.75)):
        _fid(run, value, 2048, coco)
    _fid(alpha, 301.5, 64, coco)
    _fid(delta, 288.25, 64, coco)
    world.pair = campaign_create(project=world.campaign.project, name="alpha vs delta",
                                 runs=[alpha, delta], build_now=True)
    return world


def _page(world, campaign) -> str:
    client = Client()
    client.force_login(world.scientist)
    response = client.get(f"/dashboard/campaigns/{campaign.pk}/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _footnote(page: str, metric: str = "fid") -> str:
    """The line under the ranking table about ``metric``'s column."""
    notes = page.split('id="metric-columns"', 1)[1].split("</div>", 1)[0]
    return notes.split(f'<li data-metric="{metric}">', 1)[1].split("</li>", 1)[0]


def test_each_board_says_under_its_table_which_way_its_fid_column_was_computed(world):
    everyone = _page(world, world.campaign)
    note = _footnote(everyone)
    assert note == f"FID: {WAY_2048} (1 run has FID computed only another way: not shown)"
    assert "11.5" in everyone and "301.5" not in everyone  # alpha's 2048-d value

    pair = _page(world, world.pair)
    note = _footnote(pair)
    assert note == f"FID: {WAY_64}"
    assert "301.5" in pair and "11.5" not in pair  # alpha's 64-d value
    # Hovering a value says it too.
    assert f'title="{WAY_64}">301.5' in pair


def test_the_leaderboard_json_and_the_command_carry_each_columns_way(api, world):
    api.force_authenticate(world.scientist)
    body = api.get(f"/api/v1/campaigns/{world.campaign.pk}/leaderboard/").json()
    column = body["metric_columns"]["fid"]
    coco = ReferenceSet.objects.get(name="coco")
    assert column == {"label": "FID", "reference_set": "coco", "reference_set_id": coco.pk,
                      "backbone": "inception-v3-fid/pool3", "computed_as": "dim=2048",
                      "computed_with": WAY_2048, "runs": 3, "runs_other_way": 1}
    alpha = next(run for run in body["runs"] if run["name"] == "alpha")
    assert (alpha["metrics"]["fid"]["value"], alpha["metrics"]["fid"]["computed_as"],
            alpha["metrics"]["fid"]["reference_set"]) == (11.5, "dim=2048", "coco")
    pair = api.get(f"/api/v1/campaigns/{world.pair.pk}/leaderboard/").json()
    assert pair["metric_columns"]["fid"]["computed_as"] == "dim=64"

    out = io.StringIO()
    call_command("leaderboard", str(world.pair.pk), stdout=out)
    assert f"metric column FID: {WAY_64}" in out.getvalue()
    out = io.StringIO()
    call_command("leaderboard", str(world.pair.pk), "--json", stdout=out)
    assert json.loads(out.getvalue())["metric_columns"]["fid"]["computed_with"] == WAY_64


def test_the_model_dashboard_says_how_each_metric_column_was_computed(world):
    client = Client()
    client.force_login(world.scientist)
    model_id = world.runs[0].checkpoint.model_id
    response = client.get(f"/dashboard/models/{model_id}/")
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert _footnote(page) == (
        f"FID: {WAY_2048} (1 run has FID computed only another way: not shown)")
    assert _footnote(page, "clip_score") == "CLIP-score: no value yet"
