"""Leaderboards computed from votes in the database."""

import numpy as np
import pytest

from evalhub.campaigns.models import ComparisonTask, Judgment
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.results import ABTest, ABTestError, MetricValue
from evalhub.leaderboards.selectors import (
    ab_test,
    bootstrap_rounds_default,
    leaderboard_compute,
    name_runs_in,
)
from tests.builders import build_campaign
from tests.leaderboards.helpers import cast, set_run_metric, simulate_votes

pytestmark = pytest.mark.django_db

STRENGTHS = [1250, 1080, 920, 750]


def _world(**kwargs):
    world = build_campaign(runs=4, prompts=6, annotators=6,
                           run_names=["best", "good", "fair", "poor"], **kwargs)
    strengths = {run.id: s for run, s in zip(world.runs, STRENGTHS, strict=True)}
    return world, strengths


def test_the_leaderboard_recovers_the_order_of_known_strengths():
    world, strengths = _world()
    votes = simulate_votes(world, strengths, seed=1)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert board.votes == votes == 6 * 6 * 6
    assert [r.name for r in board.runs] == ["best", "good", "fair", "poor"]
    best, poor = board.runs[0], board.runs[-1]
    assert best.rank == 1 and poor.rank > 1
    assert best.elo_lower < best.elo < best.elo_upper
    assert best.rank_low == 1 and best.rank_low <= best.rank_high
    # Mean-anchored Elo scale: ratings average 1000, spread close to the true one.
    elos = np.array([r.elo for r in board.runs])
    assert abs(elos.mean() - 1000) < 0.1  # displayed to 0.1 Elo
    assert 300 < elos[0] - elos[-1] < 700
    assert best.online_elo > poor.online_elo
    assert best.win_rate > 0.5 > poor.win_rate
    assert sum(r.votes for r in board.runs) == 2 * votes
    assert all(r.wins + r.losses + r.ties == r.votes for r in board.runs)
    observed = board.win_rates.observed
    assert observed[0][0] is None and observed[0][3] > 0.5
    predicted = board.win_rates.predicted
    assert predicted[0][0] == 0.5 and predicted[0][3] > 0.8
    assert board.warnings == ()


def test_default_bootstrap_rounds_is_1000(settings):
    del settings.EVALHUB_LEADERBOARD_BOOTSTRAP_ROUNDS
    assert bootstrap_rounds_default() == 1000


def test_retracted_and_gold_votes_are_left_out():
    world, strengths = _world()
    simulate_votes(world, strengths)
    total = Judgment.objects.count()
    Judgment.objects.filter(pk__in=Judgment.objects.values("pk")[:10]).update(
        retracted_at="2024-01-01T00:00:00Z")
    task = ComparisonTask.objects.filter(campaign=world.campaign).first()
    ComparisonTask.objects.filter(pk=task.pk).update(is_gold=True, gold_answer="a")
    gold_votes = Judgment.objects.filter(task=task, retracted_at__isnull=True).count()
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert board.votes == total - 10 - gold_votes


def test_run_metrics_sit_next_to_each_run_and_rank_agreement_is_computed():
    world, strengths = _world()
    simulate_votes(world, strengths)
    for run, fid in zip(world.runs, [10.0, 14.0, 20.0, 31.0], strict=True):
        set_run_metric(run, "fid", fid)  # lower is better: same order as humans
    for run, clip in zip(world.runs, [20.0, 25.0, 30.0, 35.0], strict=True):
        set_run_metric(run, "clip_score", clip, calibrated=False)  # reversed order
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    best = board.runs[0]
    assert best.metrics["fid"] == MetricValue(value=10.0, std=None, calibrated=True,
                                              backbone="test-backbone", label="FID")
    assert best.metrics["clip_score"].calibrated is False
    assert board.any_uncalibrated
    agreement = board.metric_agreement
    assert agreement["fid"].spearman == 1.0 and agreement["fid"].kendall == 1.0
    assert agreement["fid"].calibrated is True
    assert agreement["clip_score"].spearman == -1.0
    assert agreement["clip_score"].calibrated is False
    assert agreement["fid"].n == 4


def test_a_disconnected_comparison_graph_gives_a_warning_not_diverging_ratings():
    world = build_campaign(runs=4, prompts=2, annotators=2, run_names=["a1", "a2", "b1", "b2"])
    a1, a2, b1, b2 = world.runs
    groups = [{a1.id, a2.id}, {b1.id, b2.id}]
    for task in ComparisonTask.objects.filter(campaign=world.campaign):
        if {task.run_a_id, task.run_b_id} in groups:
            for annotator, outcome in zip(world.annotators, ["a", "a"], strict=True):
                cast(task, annotator, outcome)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    elos = [r.elo for r in board.runs]
    assert all(e is not None and abs(e - 1000) < 2000 for e in elos)
    assert sorted(map(sorted, board.disconnected_groups)) == [["a1", "a2"], ["b1", "b2"]]
    text = " ".join(board.warnings)
    assert "disconnected" in text
    assert "never won" in text and "[" not in text  # indices replaced by run names
    assert "pseudo-count" in text


def test_no_votes_gives_an_empty_leaderboard_with_a_warning():
    world, _ = _world()
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert board.votes == 0
    assert all(r.elo is None for r in board.runs)
    assert board.warnings == ("no votes match these filters yet",)


def test_position_bias_per_campaign_and_annotator():
    world, _ = _world()
    biased, fair = world.annotators[:2]
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign))
    for k, task in enumerate(tasks):
        # The biased annotator always picks the image shown on the left.
        side = "left" if k % 2 else "right"
        cast(task, biased, "a" if side == "left" else "b", a_side=side)
        cast(task, fair, "a" if k % 4 < 2 else "b", a_side=side)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    bias = board.position_bias
    per = {row.username: row for row in bias.annotators}
    assert per[biased.username].left_rate == 1.0 and per[biased.username].biased
    assert per[biased.username].p_value < 1e-6
    assert not per[fair.username].biased
    assert bias.overall.n == 2 * len(tasks)


def test_category_breakdown_shows_a_run_that_wins_overall_but_loses_a_category():
    world = build_campaign(runs=4, prompts=6, annotators=10,
                           run_names=["best", "good", "fair", "poor"])
    best, good, fair, poor = world.runs
    colour = {best.id: 1500, good.id: 1000, fair.id: 900, poor.id: 700}
    counting = {**colour, best.id: 1000, good.id: 1250}
    simulate_votes(world, colour, override={"counting": counting}, seed=3)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert board.runs[0].name == "best"
    section = board.category_breakdown
    assert section.categories == ("colour", "counting")
    assert section.winners["colour"] == best.id
    assert section.winners["counting"] == good.id
    assert any(r.category == "counting" and r.run == best.id and r.other == good.id
               for r in section.reversals)


def test_a_category_whose_runs_are_level_at_the_top_names_no_best_run():
    world = build_campaign(runs=2, prompts=4, annotators=2)
    for task in ComparisonTask.objects.filter(campaign=world.campaign):
        cast(task, world.annotators[0], "tie")  # every category: only ties
    section = leaderboard_compute(campaign=world.campaign,
                                  filters=LeaderboardFilters()).category_breakdown
    assert section.categories == ("colour", "counting")
    assert section.winners == {}


def test_sequential_ab_test_between_two_runs():
    world, strengths = _world()
    simulate_votes(world, strengths)
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    best, poor = world.runs[0], world.runs[3]
    result = ab_test(board=board, run_a=poor.id, run_b=best.id)
    assert isinstance(result, ABTest)
    assert result.decision == "b_better"
    assert result.wins_b > result.wins_a
    assert result.message.startswith("best beats poor")
    missing = ab_test(board=board, run_a=poor.id, run_b=99999)
    assert isinstance(missing, ABTestError) and "99999" in missing.error


def test_run_indices_in_warnings_become_names():
    names = ["x", "y", "z"]
    assert name_runs_in("runs [0, 2] never won", names) == "runs x, z never won"
    assert name_runs_in("groups [[0], [1, 2]]", names) == "groups {x} / {y, z}"
