"""Dashboard charts: legends above the plot, axes that fit their labels, a sensible range for a
single point, one labelled line per campaign on the model page, every run in its table."""

import pytest

from evalhub.campaigns.models import CampaignStatus, ComparisonTask
from evalhub.leaderboards import charts
from evalhub.leaderboards.text import fit_method
from tests.builders import build_campaign
from tests.factories import CampaignFactory
from tests.leaderboards.helpers import cast
from tests.leaderboards.test_results import _board

PAIRS = fit_method(task_kind="pair", k=None)


def test_a_single_value_gets_a_readable_range_and_differing_values_keep_plotly_s():
    assert charts.padded_range([10_000.0], relative=0.5) == [5_000.0, 15_000.0]
    assert charts.padded_range([0.0, 0.0]) == [-1.0, 1.0]
    assert charts.padded_range([1.0, 2.0]) is None and charts.padded_range([]) is None


def test_one_checkpoint_is_one_tick_at_its_step_not_a_9999k_axis():
    series = [{"name": "campaign A", "points": [
        {"step": 10_000, "elo": 1000.0, "lower": 980.0, "upper": 1020.0, "run": "r"}]},
        {"name": "campaign B", "points": []}]
    figure = charts.checkpoint_elo_chart(series)
    xaxis, yaxis = figure["layout"]["xaxis"], figure["layout"]["yaxis"]
    assert xaxis["tickvals"] == [10_000] and xaxis["tickformat"] == ",d"
    assert xaxis["range"] == [5_000.0, 15_000.0]
    assert "range" not in yaxis  # plotly's autorange fits the point's interval
    # one labelled line per campaign that has points, the legend shown even for one line
    assert [trace["name"] for trace in figure["data"]] == ["campaign A"]
    assert figure["layout"]["showlegend"] is True


def test_legends_sit_above_the_plot_and_axes_fit_their_labels():
    board = _board()
    for figure in (charts.elo_chart(board, fit=PAIRS), charts.winrate_chart(board)):
        layout = figure["layout"]
        assert layout["legend"]["y"] >= 1 and layout["legend"]["yanchor"] == "bottom"
        assert layout["xaxis"]["automargin"] and layout["yaxis"]["automargin"]


@pytest.mark.django_db
def test_the_model_page_draws_a_line_per_voted_campaign_and_lists_every_run(client):
    world = build_campaign(runs=3, prompts=2, annotators=1)
    for task in ComparisonTask.objects.filter(campaign=world.campaign):
        cast(task, world.annotators[0], "a")
    unvoted = CampaignFactory(project=world.campaign.project, name="not voted yet")
    unvoted.runs.set(world.runs)
    client.force_login(world.scientist)
    model_id = world.runs[0].checkpoint.model_id
    response = client.get(f"/dashboard/models/{model_id}/")
    page = response.content.decode()
    assert "No line yet for <bdi>not voted yet</bdi>" in page
    for run in world.runs:
        assert f"<td><bdi>{run.name}</bdi></td>" in page
    figure = next(c for c in response.context["charts"] if c["id"] == "checkpoint-elo")
    assert [t["name"] for t in figure["figure"]["data"]] == [world.campaign.name]


@pytest.mark.django_db
def test_the_model_page_leaves_out_failed_campaigns_that_will_never_have_a_line(client):
    world = build_campaign(runs=2, prompts=2, annotators=1, name="voted")
    for task in ComparisonTask.objects.filter(campaign=world.campaign):
        cast(task, world.annotators[0], "a")
    failed = CampaignFactory(project=world.campaign.project, name="failed build",
                             status=CampaignStatus.FAILED)
    failed.runs.set(world.runs)
    client.force_login(world.scientist)
    response = client.get(f"/dashboard/models/{world.runs[0].checkpoint.model_id}/")
    page = response.content.decode()
    assert [c.name for c in response.context["campaigns"]] == ["voted"]
    assert "human Elo from 1 campaign containing their runs" in page
    assert "No line yet" not in page and "failed build" not in page


@pytest.mark.django_db
def test_category_bars_carry_their_95_percent_intervals():
    from evalhub.leaderboards.filters import LeaderboardFilters
    from evalhub.leaderboards.services import leaderboard_get

    world = build_campaign(runs=2, prompts=4, annotators=2)
    for index, task in enumerate(ComparisonTask.objects.filter(campaign=world.campaign)):
        for annotator in world.annotators:
            cast(task, annotator, "a" if index % 3 else "b")
    snapshot, _ = leaderboard_get(campaign=world.campaign, filters=LeaderboardFilters())
    board = snapshot.result
    section = board.category_breakdown
    assert set(section.categories) == {"colour", "counting"}
    for category in section.categories:
        for run_id, rating in section.ratings[category].items():
            assert section.lower[category][run_id] <= rating <= section.upper[category][run_id]
    figure = charts.category_chart(board)
    bars = figure["data"]
    assert all(bar["error_y"]["array"] and bar["error_y"]["arrayminus"] for bar in bars)
    assert "95% CI" in figure["layout"]["title"]["text"]


def test_names_are_shown_as_typed_never_as_plotly_markup():
    # plotly reads <a href>, <b>, <span style> and <br> in labels: a run name drew a link to
    # another site and styles the CSP refuses; "%{" in a name was read as a template.
    import dataclasses
    import json

    hostile = '<a href="https://evil.example">see</a><span style="font-size:40px">%{y}</span>'
    board = _board()
    runs = tuple(dataclasses.replace(r, name=f"{hostile}{r.name}") for r in board.runs)
    section = dataclasses.replace(
        board.category_breakdown, categories=(f"<b>{hostile}</b>",),
        ratings={f"<b>{hostile}</b>": board.category_breakdown.ratings["colour"]})
    board = dataclasses.replace(board, runs=runs, category_breakdown=section)
    figures = [charts.elo_chart(board, fit=PAIRS), charts.winrate_chart(board),
               charts.category_chart(board),
               charts.checkpoint_elo_chart([{"name": hostile, "points": [
                   {"step": 1, "elo": 1000.0, "lower": 990.0, "upper": 1010.0,
                    "run": hostile}]}])]
    for figure in figures:
        text = json.dumps(figure["data"])
        assert "<a " not in text and "<span" not in text and "<b>" not in text
        assert "&lt;a href=\\\"https://evil.example\\\"&gt;see&lt;/a&gt;" in text
        for trace in figure["data"]:
            assert hostile not in trace.get("hovertemplate", "")
    elo = figures[0]["data"][0]
    assert elo["x"][0] == charts.label(runs[0].name)


def test_a_board_judged_by_a_metric_on_random_weights_says_so_in_its_elo_chart():
    import dataclasses

    board = dataclasses.replace(_board(), judge="metric:clip_score", judge_calibrated=False)
    title = charts.elo_chart(board, fit=PAIRS)["layout"]["title"]["text"]
    assert title.endswith("judged by metric:clip_score, uncalibrated")
    assert "uncalibrated" not in charts.elo_chart(_board(), fit=PAIRS)["layout"]["title"]["text"]
