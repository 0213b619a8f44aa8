"""A video campaign's leaderboard carries its runs' video metrics (CLIP-score over frames,
temporal consistency, flicker) beside the ratings; an image campaign's table is unchanged."""

import pytest
from django.test import Client

from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.selectors import HIGHER_IS_BETTER, leaderboard_compute
from evalhub.leaderboards.text import leaderboard_table, ranking_rows, table_metrics
from evalhub.runs.models import GenerationRun
from tests.builders import build_campaign
from tests.leaderboards.helpers import set_run_metric, simulate_votes

pytestmark = pytest.mark.django_db

VIDEO_VALUES = {  # run index -> (video_clip_score, temporal_consistency, flicker)
    0: (31.0, 0.97, 0.02), 1: (29.0, 0.93, 0.05), 2: (26.0, 0.88, 0.09)}


def _video_world():
    world = build_campaign(runs=3, prompts=4, annotators=3,
                           run_names=["clip-a", "clip-b", "clip-c"])
    GenerationRun.objects.filter(pk__in=[r.pk for r in world.runs]).update(media_kind="video")
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1200, 1000, 800],
                                                       strict=True)})
    for index, run in enumerate(world.runs):
        clip, temporal, flicker = VIDEO_VALUES[index]
        set_run_metric(run, "video_clip_score", clip)
        set_run_metric(run, "temporal_consistency", temporal)
        set_run_metric(run, "flicker", flicker)
    return world


def test_video_metrics_are_carried_per_run_with_their_direction():
    world = _video_world()
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())

    by_name = {row.name: row for row in board.runs}
    assert by_name["clip-a"].metrics["temporal_consistency"].value == 0.97
    assert by_name["clip-c"].metrics["flicker"].value == 0.09
    # Rank agreement of the people's ranking with each video metric, flicker lower-is-better.
    assert set(board.metric_agreement) >= {"video_clip_score", "temporal_consistency",
                                           "flicker"}
    assert board.metric_agreement["flicker"].higher_is_better is False
    assert HIGHER_IS_BETTER["temporal_consistency"] is True


def test_the_ranking_table_shows_the_video_columns_beside_the_ratings():
    world = _video_world()
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    labels = [label for _, label in table_metrics(board)]
    assert labels[-3:] == ["CLIP (frames)", "Temporal cons.", "Flicker"]
    rows, _ = ranking_rows(board)
    first = {cell.label: cell.text for cell in rows[0].metric_cells}
    assert rows[0].run.name == "clip-a" and first["Flicker"] == "0.02"
    assert "Temporal cons." in leaderboard_table(board)

    client = Client()
    client.force_login(world.scientist)
    html = client.get(f"/dashboard/campaigns/{world.campaign.pk}/").content.decode()
    assert "Temporal cons." in html and "0.97" in html
    assert "Left video wins" in html  # position bias speaks of the campaign's medium
    model_page = client.get(f"/dashboard/models/{world.runs[0].checkpoint.model_id}/")
    assert "Flicker (LPIPS of consecutive frames)" in model_page.content.decode()


def test_an_image_campaign_keeps_its_image_columns_only():
    world = build_campaign(runs=2, prompts=2, annotators=2)
    simulate_votes(world, {world.runs[0].id: 1100, world.runs[1].id: 900})
    set_run_metric(world.runs[0], "fid", 12.0)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert [label for _, label in table_metrics(board)] == ["FID", "KID", "CLIP", "LPIPS-div"]


def test_cmmd_gets_a_column_when_a_run_has_it():
    world = build_campaign(runs=2, prompts=2, annotators=2)
    simulate_votes(world, {world.runs[0].id: 1100, world.runs[1].id: 900})
    set_run_metric(world.runs[1], "cmmd", 0.42)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert [label for _, label in table_metrics(board)] == [
        "FID", "KID", "CLIP", "LPIPS-div", "CMMD"]
    assert "0.42" in leaderboard_table(board)
