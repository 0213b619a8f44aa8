"""A leaderboard that pools campaigns: a pair campaign and a best-of-K campaign over the same
runs make one Plackett-Luce leaderboard (the ``pool`` filter)."""

import dataclasses
import uuid

import numpy as np
import pytest
from django.core.management import call_command

from evalhub.campaigns.models import Judgment, Lease, TaskImage, TaskKind
from evalhub.campaigns.quality.annotators import annotator_set_excluded
from evalhub.campaigns.services import campaign_create
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.core.errors import EvalHubError
from evalhub.leaderboards.filters import LeaderboardFilters, parse_filters
from evalhub.leaderboards.selectors import leaderboard_compute
from evalhub.leaderboards.services import leaderboard_get
from evalhub.leaderboards.text import fit_method, run_count_column
from ratings.plackett_luce import Rankings, fit_plackett_luce
from tests.builders import build_campaign, rank_every_set
from tests.factories import CheckpointFactory, GenerationRunFactory, ImageFactory
from tests.leaderboards.helpers import simulate_votes

pytestmark = pytest.mark.django_db

NAMES = ["best", "good", "fair", "poor"]
ELO = [1450.0, 1150.0, 850.0, 550.0]  # 300 apart: the order holds whatever the draws


def _pair_and_best_of_4(*, rankings: bool = True):
    """A pair campaign with simulated votes and a best-of-4 campaign of the same project over
    the same runs, every set ranked best-first as ``NAMES`` (through the rating service)."""
    world = build_campaign(runs=4, prompts=2, annotators=3, run_names=NAMES, name="pairs")
    simulate_votes(world, {run.pk: elo for run, elo in zip(world.runs, ELO, strict=True)})
    best_of_4 = campaign_create(project=world.campaign.project, name="best of 4",
                                runs=world.runs, task_kind=TaskKind.BEST_OF_K, k=4,
                                rank_all=True, build_now=True)
    kwise = dataclasses.replace(world, campaign=best_of_4)
    if rankings:
        for annotator in kwise.annotators:
            _rank_sets_by_truth(kwise, annotator)
    return world, kwise


def _rank_sets_by_truth(kwise, annotator):
    """``annotator`` ranks every set served, its shown slots in the runs' true order."""
    order = {run.pk: i for i, run in enumerate(kwise.runs)}
    while not (task := rate_next(annotator=annotator, campaign_id=kwise.campaign.pk)).get("done"):
        lease = Lease.objects.get(pk=task["lease"])
        run_at = dict(TaskImage.objects.filter(task_id=lease.task_id)
                      .values_list("position", "run_id"))
        slots = sorted(range(4), key=lambda s: order[run_at[lease.order[s]]])
        rate_vote(annotator=annotator, campaign_id=kwise.campaign.pk,
                  vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": slots}))


def _plackett_luce_of_both(world, kwise) -> np.ndarray:
    """Plackett-Luce fitted by hand to the stored votes of both campaigns: a pair vote is the
    entry "from {a, b}, picked the winner", a full ranking its first K - 1 picks."""
    index = {run.pk: i for i, run in enumerate(world.runs)}
    shown, picks = [], []
    for judgment in Judgment.objects.filter(campaign=world.campaign).select_related("task"):
        a, b = index[judgment.task.run_a_id], index[judgment.task.run_b_id]
        shown.append((a, b))
        picks.append((a,) if judgment.outcome == "a" else (b,))
    for judgment in Judgment.objects.filter(campaign=kwise.campaign):
        run_at = dict(TaskImage.objects.filter(task_id=judgment.task_id)
                      .values_list("position", "run_id"))
        shown.append(tuple(index[r] for r in run_at.values()))
        picks.append(tuple(index[run_at[p]] for p in judgment.ranking[:-1]))
    return fit_plackett_luce(Rankings.of(4, picks, shown=shown)).ratings


def test_a_pair_campaign_pooled_with_a_best_of_k_campaign_is_one_plackett_luce_fit():
    world, kwise = _pair_and_best_of_4()
    pair_votes = Judgment.objects.filter(campaign=world.campaign).count()
    rankings = Judgment.objects.filter(campaign=kwise.campaign).count()
    assert pair_votes == 12 * 3 and rankings > 0

    alone = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    pooled = leaderboard_compute(campaign=world.campaign,
                                 filters=LeaderboardFilters(pool=(kwise.campaign.pk,)))

    assert alone.votes == pair_votes and alone.pooled == ()
    assert pooled.votes == pair_votes + rankings
    assert [(p.id, p.name, p.task_kind, p.k, p.votes) for p in pooled.pooled] == [
        (kwise.campaign.pk, "best of 4", TaskKind.BEST_OF_K, 4, rankings)]
    expected = _plackett_luce_of_both(world, kwise)
    by_name = {row.name: row for row in pooled.runs}
    for name, rating in zip(NAMES, expected, strict=True):
        assert by_name[name].elo == pytest.approx(rating, abs=0.05)
        assert by_name[name].elo_lower <= by_name[name].elo <= by_name[name].elo_upper
    # Every ranking agrees with the truth, so pooling them moves the board towards it.
    assert [row.name for row in pooled.runs] == NAMES
    # A full ranking of 4 states 6 pairs; a pair vote one: the records count both.
    assert sum(row.wins for row in pooled.runs) == pytest.approx(pair_votes + 6 * rankings)
    assert (fit_method(task_kind=TaskKind.PAIR, k=None, pooled=pooled.pooled)
            == "Plackett-Luce Elo (best-of-4 rankings and pair votes)")
    assert run_count_column(task_kind=TaskKind.PAIR, pooled=pooled.pooled).label == "Pairs"
    assert fit_method(task_kind=TaskKind.PAIR, k=None, pooled=alone.pooled) == "Bradley-Terry Elo"


def test_the_best_of_k_campaign_can_pool_the_pair_campaign_the_same_way():
    world, kwise = _pair_and_best_of_4()
    from_pairs = leaderboard_compute(campaign=world.campaign,
                                     filters=LeaderboardFilters(pool=(kwise.campaign.pk,)))
    from_best = leaderboard_compute(campaign=kwise.campaign,
                                    filters=LeaderboardFilters(pool=(world.campaign.pk,)))
    assert from_best.votes == from_pairs.votes
    assert ({r.name: r.elo for r in from_best.runs}
            == pytest.approx({r.name: r.elo for r in from_pairs.runs}, abs=0.05))


def test_each_pooled_campaign_leaves_out_its_own_excluded_annotators():
    world, kwise = _pair_and_best_of_4()
    dropped = world.annotators[0]
    annotator_set_excluded(campaign=kwise.campaign, annotator_id=dropped.pk, excluded=True)
    board = leaderboard_compute(campaign=world.campaign,
                                filters=LeaderboardFilters(pool=(kwise.campaign.pk,)))
    kept_rankings = Judgment.objects.filter(campaign=kwise.campaign).exclude(
        annotator=dropped).count()
    # Excluded from the best-of-4 campaign only: their pair votes still count.
    assert board.pooled[0].votes == kept_rankings
    assert board.votes == Judgment.objects.filter(campaign=world.campaign).count() + kept_rankings


def test_a_pooled_campaign_without_votes_on_the_runs_is_said():
    world, kwise = _pair_and_best_of_4(rankings=False)
    board = leaderboard_compute(campaign=world.campaign,
                                filters=LeaderboardFilters(pool=(kwise.campaign.pk,)))
    assert board.pooled[0].votes == 0
    assert ("pooled campaign 'best of 4' has no vote on this campaign's runs under these "
            "filters") in board.warnings
    assert fit_method(task_kind=TaskKind.PAIR, k=None, pooled=board.pooled) == "Bradley-Terry Elo"


def test_a_vote_in_a_pooled_campaign_makes_the_pooled_leaderboard_stale():
    world, kwise = _pair_and_best_of_4(rankings=False)
    filters = LeaderboardFilters(pool=(kwise.campaign.pk,))
    before, _ = leaderboard_get(campaign=world.campaign, filters=filters)
    rank_every_set(kwise, ranking=(0, 1, 2, 3))
    after, stale = leaderboard_get(campaign=world.campaign, filters=filters)
    # Not the default board: a stale pooled one is recomputed on the request.
    assert not stale and after.computed_at > before.computed_at
    assert after.votes_count == before.votes_count + Judgment.objects.filter(
        campaign=kwise.campaign).count()
    again, stale = leaderboard_get(campaign=world.campaign, filters=filters)
    assert not stale and again.computed_at == after.computed_at


def test_pool_names_other_campaigns_of_the_project_that_rate_the_criterion():
    world, kwise = _pair_and_best_of_4(rankings=False)
    stranger = build_campaign(runs=2, prompts=1, name="elsewhere").campaign
    aesthetics = campaign_create(project=world.campaign.project, name="looks",
                                 runs=world.runs, criteria=["overall", "aesthetics"],
                                 build_now=True)

    def refusal(pool: str, campaign=world.campaign, **params: str) -> str:
        with pytest.raises(EvalHubError) as caught:
            parse_filters(campaign=campaign, params={"pool": pool, **params})
        return caught.value.message

    assert (refusal(str(stranger.pk))
            == f"No campaign {stranger.pk} in this project to pool votes from.")
    assert refusal("999999") == "No campaign 999999 in this project to pool votes from."
    assert "always counts its own campaign's votes" in refusal(str(world.campaign.pk))
    assert refusal("4;9") == "pool must be campaign ids separated by commas, e.g. pool=4,9."
    # Digits int() refuses ("²") or reads as another script's (Arabic-Indic one is 1): not ids.
    for digits in ("\u00b2", "\u0661", "\uff11"):
        assert refusal(digits).startswith("pool must be campaign ids"), digits
    assert refusal("9" * 19).startswith("pool must be campaign ids")
    # The pair campaign rates "overall" only: nothing to pool for the other's "aesthetics".
    assert refusal(str(world.campaign.pk), aesthetics, criterion="aesthetics") == (
        "Campaign 'pairs' does not rate 'aesthetics': it has no votes to pool for it.")
    assert parse_filters(campaign=aesthetics, params={"pool": str(world.campaign.pk)}).pool == (
        world.campaign.pk,)
    assert refusal(",".join(str(i) for i in range(1, 23))).startswith(
        "A leaderboard pools the votes of at most 20 other campaigns")
    # Commas or repeated parameters, in any order and with repeats: one sorted tuple.
    parsed = parse_filters(campaign=world.campaign,
                           params={"pool": f" {kwise.campaign.pk} ,{kwise.campaign.pk}"})
    assert parsed.pool == (kwise.campaign.pk,) and not parsed.is_default
    assert parsed.as_dict()["pool"] == [kwise.campaign.pk]
    assert "pool" not in LeaderboardFilters().as_dict()


def test_the_dashboard_leaves_out_of_the_pool_what_does_not_rate_a_new_criterion(client):
    """Its form can change the criterion with the pool ticked: the page pools what it can and
    says what it left out, instead of dropping every filter."""
    world, kwise = _pair_and_best_of_4()
    looks = campaign_create(project=world.campaign.project, name="looks", runs=world.runs,
                            criteria=["overall", "aesthetics"], build_now=True)
    client.force_login(looks.project.memberships.get(role="scientist").user)
    response = client.get(f"/dashboard/campaigns/{looks.pk}/",
                          {"criterion": "aesthetics", "pool": [kwise.campaign.pk]})
    html = response.content.decode()
    assert response.context["board"].criterion == "aesthetics"
    assert response.context["board"].pooled == ()
    assert "showing the unfiltered leaderboard" not in html
    assert ('<p class="stale" id="unpooled">Not pooled: <bdi>best of 4</bdi> does not rate '
            'aesthetics.') in html
    # Offered for overall, not for aesthetics, which it does not rate.
    assert 'id="pool-choices"' not in html
    html = client.get(f"/dashboard/campaigns/{looks.pk}/").content.decode()
    assert f'name="pool" value="{kwise.campaign.pk}">' in html
    assert f'name="pool" value="{world.campaign.pk}">' in html


def test_only_campaigns_comparing_two_of_the_runs_are_offered(client):
    world, kwise = _pair_and_best_of_4(rankings=False)
    # Two more runs of the project, answering the same prompts.
    model = world.runs[0].checkpoint.model
    other_runs = [GenerationRunFactory(checkpoint=CheckpointFactory(model=model),
                                       prompt_set=world.runs[0].prompt_set) for _ in range(2)]
    for run in other_runs:
        for prompt in world.prompts:
            ImageFactory(run=run, prompt=prompt, seed=0)
    apart = campaign_create(project=world.campaign.project, name="apart", runs=other_runs,
                            build_now=True)
    one_shared = campaign_create(project=world.campaign.project, name="one shared",
                                 runs=[world.runs[0], other_runs[0]], build_now=True)
    client.force_login(world.scientist)
    choices = client.get(f"/dashboard/campaigns/{world.campaign.pk}/").context["pool_choices"]
    assert [c.pk for c in choices] == [kwise.campaign.pk]
    assert {apart.pk, one_shared.pk}.isdisjoint(c.pk for c in choices)


def test_the_api_pools_and_refuses_what_it_cannot_pool(api):
    world, kwise = _pair_and_best_of_4()
    stranger = build_campaign(runs=2, prompts=1, name="elsewhere").campaign
    api.force_login(world.scientist)
    url = f"/api/v1/campaigns/{world.campaign.pk}/leaderboard/"
    body = api.get(url, {"pool": str(kwise.campaign.pk)}).json()
    rankings = Judgment.objects.filter(campaign=kwise.campaign).count()
    assert body["votes"] == 36 + rankings
    assert body["filters"]["pool"] == [kwise.campaign.pk]
    assert body["pooled"] == [{"id": kwise.campaign.pk, "name": "best of 4",
                               "task_kind": "best_of_k", "k": 4, "votes": rankings}]
    refused = api.get(url, {"pool": str(stranger.pk)})
    assert refused.status_code == 400
    assert "in this project to pool votes from" in refused.json()["detail"]


def test_the_dashboard_offers_the_projects_campaigns_and_names_what_it_pooled(client):
    world, kwise = _pair_and_best_of_4()
    client.force_login(world.scientist)
    url = f"/dashboard/campaigns/{world.campaign.pk}/"
    html = client.get(url).content.decode()
    assert 'id="pool-choices"' in html
    assert f'name="pool" value="{kwise.campaign.pk}">' in html  # offered, not checked
    assert 'id="pooled"' not in html
    rankings = Judgment.objects.filter(campaign=kwise.campaign).count()
    html = client.get(url, {"pool": [kwise.campaign.pk], "ab_a": world.runs[0].pk,
                            "ab_b": world.runs[1].pk}).content.decode()
    assert f'name="pool" value="{kwise.campaign.pk}" checked>' in html
    assert (f'Pooled with <a href="/dashboard/campaigns/{kwise.campaign.pk}/"><bdi>best of 4 '
            f'(best of 4, {rankings} votes)</bdi></a>') in html
    assert "Plackett-Luce Elo (best-of-4 rankings and pair votes) with" in html
    assert f"{36 + rankings} votes" in html
    # The A/B form keeps the pool with the other filters.
    assert f'<input type="hidden" name="pool" value="{kwise.campaign.pk}">' in html
    html = client.get(url, {"pool": "999999"}).content.decode()
    assert "No campaign 999999 in this project to pool votes from." in html


def test_the_leaderboard_command_pools_and_names_its_columns(capsys):
    world, kwise = _pair_and_best_of_4()
    call_command("leaderboard", str(world.campaign.pk), "--pool", str(kwise.campaign.pk))
    out = capsys.readouterr().out
    rankings = Judgment.objects.filter(campaign=kwise.campaign).count()
    assert f"{36 + rankings} votes - Plackett-Luce Elo (best-of-4 rankings and pair votes)" in out
    assert (f"pooled with campaign #{kwise.campaign.pk} best of 4 (best of 4, "
            f"{rankings} votes)") in out
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    assert "pairs" in header.split() and "votes" not in header.split()
