"""Quality control that pays: a reliability per annotator, leaderboards that leave flagged
annotators out or weight them, and a dashboard that says who and why."""

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from evalhub.campaigns.models import ComparisonTask, JudgeKind, Judgment, Lease
from evalhub.campaigns.quality.reliability import campaign_reliability
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.filters import LeaderboardFilters, parse_filters
from evalhub.leaderboards.selectors import leaderboard_compute
from tests.builders import build_campaign
from tests.factories import JudgmentFactory, count_judgments
from tests.leaderboards.helpers import bt_outcome

pytestmark = pytest.mark.django_db

ELO = (400.0, 0.0, -400.0)


def _world():
    """Three runs far apart; three honest annotators and one who always picks the left image,
    on every task; six gold tasks whose answer is the stronger run."""
    world = build_campaign(runs=3, prompts=14, annotators=4, judgments_per_pair=10)
    strengths = {run.pk: elo for run, elo in zip(world.runs, ELO, strict=True)}
    *honest, lefty = world.annotators
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign).order_by("pk"))
    for task in tasks[:6]:
        answer = "a" if strengths[task.run_a_id] > strengths[task.run_b_id] else "b"
        ComparisonTask.objects.filter(pk=task.pk).update(is_gold=True, gold_answer=answer)
        task.is_gold = True
    rng = np.random.default_rng(0)
    rows = []
    for task in tasks:
        for annotator in world.annotators:
            side = "left" if rng.random() < 0.5 else "right"
            if annotator == lefty:
                outcome = "a" if side == "left" else "b"
            elif task.is_gold:  # gold pairs are chosen to be obvious
                outcome = "a" if strengths[task.run_a_id] > strengths[task.run_b_id] else "b"
            else:
                outcome = bt_outcome(rng, strengths[task.run_a_id], strengths[task.run_b_id])
            rows.append(Judgment(task=task, campaign_id=task.campaign_id, criterion="overall",
                                 outcome=outcome, judge_kind=JudgeKind.HUMAN,
                                 annotator=annotator, a_side=side, client_id=uuid.uuid4()))
    count_judgments(Judgment.objects.bulk_create(rows))
    return world, honest, lefty


def test_the_annotator_who_always_picks_left_is_flagged_and_loses_their_weight():
    world, honest, lefty = _world()
    rows = {row.annotator_id: row for row in
            campaign_reliability(campaign=world.campaign).annotators}

    assert "position" in rows[lefty.pk].flags
    assert "picks one side far more often than chance" in rows[lefty.pk].reasons
    assert rows[lefty.pk].weight < 0.05 and rows[lefty.pk].down_weighted
    for person in honest:
        assert rows[person.pk].flags == ()
        assert rows[person.pk].accuracy > 0.8
        assert rows[person.pk].weight > 10 * rows[lefty.pk].weight
    assert rows[honest[0].pk].votes == 36 and rows[honest[0].pk].gold_votes == 6


def test_exclude_leaves_the_flagged_annotator_out_of_the_leaderboard():
    world, _honest, lefty = _world()
    all_votes = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    excluded = leaderboard_compute(campaign=world.campaign,
                                   filters=LeaderboardFilters(quality="exclude"))

    lefty_votes = Judgment.objects.filter(annotator=lefty, task__is_gold=False).count()
    assert excluded.votes == all_votes.votes - lefty_votes
    assert excluded.filters["quality"] == "exclude"


def test_weight_counts_each_vote_with_its_annotators_weight():
    world, _honest, _lefty = _world()
    weights = campaign_reliability(campaign=world.campaign).weights()
    board = leaderboard_compute(campaign=world.campaign,
                                filters=LeaderboardFilters(quality="weight"))

    per_annotator = Judgment.objects.filter(task__is_gold=False).values_list(
        "annotator_id", flat=True)
    expected = sum(weights[aid] for aid in per_annotator)
    assert board.votes == round(expected)  # the sum of weights, to the nearest vote
    elo = {row.id: row.elo for row in board.runs}
    assert elo[world.runs[0].pk] > elo[world.runs[1].pk] > elo[world.runs[2].pk]


def test_an_excluded_annotator_weighs_nothing_whatever_the_estimate():
    world, honest, _lefty = _world()
    world.campaign.flags.create(annotator=honest[0], excluded=True)
    rows = {row.annotator_id: row for row in
            campaign_reliability(campaign=world.campaign).annotators}
    assert rows[honest[0].pk].excluded and rows[honest[0].pk].weight == 0.0


def test_the_quality_filter_is_parsed_and_leaves_the_default_hash_alone():
    world, _, _ = _world()
    assert parse_filters(campaign=world.campaign, params={"quality": "weight"}).quality == \
        "weight"
    with pytest.raises(EvalHubError, match="quality"):
        parse_filters(campaign=world.campaign, params={"quality": "sometimes"})
    assert "quality" not in LeaderboardFilters().as_dict()
    assert LeaderboardFilters(quality="exclude").hash != LeaderboardFilters().hash
    assert not LeaderboardFilters(quality="exclude").is_default


def test_the_dashboard_says_who_is_left_out_or_down_weighted_and_why():
    world, honest, lefty = _world()
    client = Client()
    client.force_login(world.scientist)
    url = f"/dashboard/campaigns/{world.campaign.pk}/"

    page = client.get(url, {"quality": "exclude"}).content.decode()
    section = page.split('id="annotator-quality-table"')[1].split("</table>")[0]
    assert f'data-annotator="{lefty.username}"' in section
    assert "picks one side far more often than chance" in section
    assert "left out" in section
    assert all(f'data-annotator="{p.username}"' not in section for p in honest)

    weighted = client.get(url, {"quality": "weight"}).content.decode()
    row = weighted.split(f'data-annotator="{lefty.username}"')[1].split("</tr>")[0]
    assert "weight 0 %" in row or "weight 1 %" in row
    assert "counted in full" in client.get(url).content.decode()


def test_votes_under_the_fast_vote_floor_are_counted_as_fast():
    world = build_campaign(runs=3, prompts=14, annotators=2, judgments_per_pair=2)
    bot, person = world.annotators
    tasks = list(ComparisonTask.objects.filter(campaign=world.campaign).order_by("pk"))
    # Each vote is stored right after its lease was taken: as fast as a script.
    for annotator, votes in ((bot, 30), (person, 12)):
        for task in tasks[:votes]:
            JudgmentFactory(task=task, annotator=annotator, outcome="a", a_side="left")
    # The person looked at each pair for five seconds: votes five seconds apart, each on a
    # lease taken five seconds before it.
    start = timezone.now() - timedelta(hours=1)
    for i, judgment in enumerate(Judgment.objects.filter(annotator=person).order_by("pk")):
        Judgment.objects.filter(pk=judgment.pk).update(created_at=start + timedelta(seconds=5 * i))
        Lease.objects.filter(pk=judgment.lease_id).update(
            leased_at=start + timedelta(seconds=5 * (i - 1)))

    rows = {row.annotator_id: row for row in
            campaign_reliability(campaign=world.campaign).annotators}
    assert rows[bot.pk].fast_share == 1.0 and "fast" in rows[bot.pk].flags
    assert rows[bot.pk].weight == 0.0
    assert rows[person.pk].fast_share == 0.0 and "fast" not in rows[person.pk].flags
