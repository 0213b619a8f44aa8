"""Leaderboards of best-of-K campaigns: Plackett-Luce over the stored rankings."""

import uuid

import numpy as np
import pytest

from evalhub.campaigns.models import Judgment, Lease, TaskImage, TaskKind
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.selectors import leaderboard_compute
from ratings.plackett_luce import Rankings, fit_plackett_luce
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db

NAMES = ["best", "good", "fair", "poor"]
STRENGTHS = np.array([1.2, 0.4, -0.3, -1.3])  # log-strengths, nats


def _rank_by_strength(world, rng):
    """Every annotator ranks every task they are served, drawing Plackett-Luce picks from the
    runs' strengths, through the rating service (slots as the page sends them)."""
    strength = {run.pk: s for run, s in zip(world.runs, STRENGTHS, strict=True)}
    for annotator in world.annotators:
        while not (payload := rate_next(annotator=annotator,
                                        campaign_id=world.campaign.pk)).get("done"):
            lease = Lease.objects.get(pk=payload["lease"])
            run_at = dict(TaskImage.objects.filter(task_id=lease.task_id)
                          .values_list("position", "run_id"))
            slots, picks = list(range(4)), []
            while len(slots) > 1:
                w = np.exp([strength[run_at[lease.order[s]]] for s in slots])
                pick = slots[rng.choice(len(slots), p=w / w.sum())]
                picks.append(pick)
                slots.remove(pick)
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": picks}))


def test_a_rank_all_campaign_is_fitted_by_plackett_luce_over_its_stored_rankings():
    world = build_campaign(runs=4, prompts=6, annotators=6, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4, rank_all=True,
                           judgments_per_pair=6)
    _rank_by_strength(world, np.random.default_rng(0))
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert board.votes == 36
    assert [r.name for r in board.runs] == NAMES
    # The board's ratings are the Plackett-Luce fit of the stored rankings, run by run.
    index = {run.pk: i for i, run in enumerate(world.runs)}
    shown, picks = [], []
    for judgment in Judgment.objects.filter(ranking__isnull=False):
        run_at = dict(TaskImage.objects.filter(task_id=judgment.task_id)
                      .values_list("position", "run_id"))
        shown.append(tuple(index[r] for r in run_at.values()))
        picks.append(tuple(index[run_at[p]] for p in judgment.ranking[:-1]))
    expected = fit_plackett_luce(Rankings.of(4, picks, shown=shown)).ratings
    by_name = {r.name: r for r in board.runs}
    for name, rating in zip(NAMES, expected, strict=True):
        row = by_name[name]
        assert row.elo == pytest.approx(rating, abs=0.05)
        assert row.elo_lower <= row.elo <= row.elo_upper
    # Records count the pairs a full ranking implies: K(K-1)/2 = 6 per vote.
    assert sum(r.wins for r in board.runs) == pytest.approx(36 * 6)


def test_a_best_of_k_campaign_with_one_pick_per_vote_gets_a_leaderboard():
    world = build_campaign(runs=4, prompts=6, annotators=4, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=4)
    strength = {run.pk: s for run, s in zip(world.runs, STRENGTHS, strict=True)}
    for annotator in world.annotators:
        while not (payload := rate_next(annotator=annotator,
                                        campaign_id=world.campaign.pk)).get("done"):
            lease = Lease.objects.get(pk=payload["lease"])
            run_at = dict(TaskImage.objects.filter(task_id=lease.task_id)
                          .values_list("position", "run_id"))
            # The strongest run shown is picked, except by the last annotator (who picks the
            # second), so every run both wins and loses and the MLE exists.
            order = sorted(range(4), key=lambda s: -strength[run_at[lease.order[s]]])
            slot = order[1] if annotator == world.annotators[-1] else order[0]
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": [slot]}))
    board = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    assert board.votes == 24
    assert [r.name for r in board.runs][:2] == ["best", "good"]
    assert board.runs[0].wins == pytest.approx(18 * 3)  # 18 picks, each beat 3 runs
    # Online Elo replays pairwise votes only: with none, no run has one (not Elo's 1000 start).
    assert [r.online_elo for r in board.runs] == [None] * 4


def test_metric_judges_are_refused_on_a_best_of_k_campaign(api):
    from evalhub.core.errors import EvalHubError
    from evalhub.leaderboards.services import metric_judges_run

    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    with pytest.raises(EvalHubError, match="compare pairs"):
        metric_judges_run(campaign=world.campaign)
    api.force_login(world.scientist)
    response = api.post(f"/api/v1/campaigns/{world.campaign.pk}/metric-judges/",
                        {"metric": "clip_score"}, format="json")
    assert response.status_code == 400
    assert "compare pairs" in response.json()["detail"]


def test_the_dashboard_of_a_best_of_k_campaign_claims_no_pairwise_figures(client):
    world = build_campaign(runs=4, prompts=2, annotators=2, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4)
    for annotator, slot in zip(world.annotators, (0, 1), strict=True):
        payload = rate_next(annotator=annotator, campaign_id=world.campaign.pk)
        rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                  vote=Vote(uuid.uuid4(), uuid.UUID(payload["lease"]), {},
                            rankings={"overall": [slot]}))
    client.force_login(world.scientist)
    html = client.get(f"/dashboard/campaigns/{world.campaign.pk}/").content.decode()
    assert "No decisive left-or-right votes yet" in html and "Left image wins" not in html
    board = client.get(f"/api/v1/campaigns/{world.campaign.pk}/leaderboard/").json()
    assert [run["online_elo"] for run in board["runs"]] == [None] * 4
    # The A/B test counts whole votes without ".0" (a best-of-K pick is worth whole pairs).
    first, second = world.runs[0].pk, world.runs[1].pk
    html = client.get(f"/dashboard/campaigns/{world.campaign.pk}/",
                      {"ab": f"{first},{second}"}).content.decode()
    assert " ties; anytime-valid" in html and ".0 " not in html.split("anytime-valid")[0][-200:]
