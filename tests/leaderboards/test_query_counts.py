"""Reading fresh leaderboards costs the same queries whatever the number of campaigns read.

The model dashboard reads the default board of every campaign rating the model's runs, and a
pooled leaderboard the data of every campaign it pools; both used to ask five (or four) queries
per campaign for its snapshot and data fingerprint. The fingerprints are now read for all the
campaigns at once (``fingerprint.data_fingerprints``). They also cover the names and steps a
board shows, so renaming a run, checkpoint or model makes its boards stale.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evalhub.campaigns.models import AnnotatorFlag, Judgment
from evalhub.campaigns.services import campaign_create
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.fingerprint import (
    data_fingerprint,
    data_fingerprints,
    leaderboard_fingerprint,
)
from evalhub.leaderboards.models import LeaderboardRefresh, LeaderboardSnapshot
from evalhub.leaderboards.services import (
    leaderboard_get,
    leaderboard_snapshot_refresh,
    leaderboards_get,
)
from tests.builders import CampaignWorld, build_campaign, logged_in
from tests.factories import JudgmentFactory
from tests.leaderboards.helpers import set_run_metric, simulate_votes

pytestmark = pytest.mark.django_db

SNAPSHOT_TABLE = LeaderboardSnapshot._meta.db_table


def _campaigns_over_one_model(n: int) -> list[CampaignWorld]:
    """``n`` campaigns of one project rating the same two runs of one model, every campaign
    voted on, the runs with a metric value."""
    world = build_campaign(runs=2, prompts=1, annotators=2, name="campaign-0")
    worlds = [world] + [
        dataclasses.replace(world, campaign=campaign_create(
            project=world.campaign.project, name=f"campaign-{i}", runs=world.runs,
            build_now=True))
        for i in range(1, n)]
    for each in worlds:
        simulate_votes(each, {world.runs[0].pk: 1200.0, world.runs[1].pk: 1000.0})
    set_run_metric(world.runs[0], "fid", 12.5)
    return worlds


def _vote_in(world: CampaignWorld) -> None:
    """One more human vote in ``world``'s campaign (by a new annotator)."""
    JudgmentFactory(task=world.tasks[0], outcome="b")


# --- the fingerprint --------------------------------------------------------------------------


def test_the_fingerprints_of_many_campaigns_are_read_in_four_queries(
        django_assert_num_queries):
    worlds = _campaigns_over_one_model(3)
    # Everything the fingerprint covers, different in each campaign: a retracted vote, an
    # annotator flag, a run metric of a run that only some campaigns rate, a campaign with
    # nothing at all.
    retracted = Judgment.objects.filter(campaign=worlds[0].campaign).order_by("pk").first()
    Judgment.objects.filter(pk=retracted.pk).update(retracted_at=timezone.now())
    AnnotatorFlag.objects.create(campaign=worlds[1].campaign, annotator=worlds[1].annotator,
                                 excluded=True)
    more_runs = build_campaign(runs=3, prompts=1, annotators=0, name="more runs")
    set_run_metric(more_runs.runs[2], "clip_score", 31.0)
    quiet = build_campaign(runs=2, prompts=1, annotators=0, name="quiet").campaign
    campaigns = [w.campaign for w in worlds] + [more_runs.campaign, quiet]
    one_by_one = {c.pk: data_fingerprint(campaign=c) for c in campaigns}
    assert len(set(one_by_one.values())) == len(campaigns)

    with django_assert_num_queries(4):  # votes, flags, runs, run metrics: for all of them
        assert data_fingerprints(campaigns) == one_by_one
    assert data_fingerprints([]) == {}


@pytest.mark.parametrize("edit", ["run name", "checkpoint name", "training step", "model name"])
def test_renaming_what_a_board_shows_makes_it_stale(edit):
    world = _campaigns_over_one_model(1)[0]
    default = LeaderboardFilters()
    leaderboard_snapshot_refresh(campaign=world.campaign, filters=default)
    run = world.runs[0]
    checkpoint, model = run.checkpoint, run.checkpoint.model
    if edit == "run name":
        run.name = "renamed run"
        run.save(update_fields=["name"])
    elif edit == "checkpoint name":
        checkpoint.name = "renamed checkpoint"
        checkpoint.save(update_fields=["name"])
    elif edit == "training step":
        checkpoint.training_step = 123_456
        checkpoint.save(update_fields=["training_step"])
    else:
        model.name = "renamed model"
        model.save(update_fields=["name"])

    _, stale = leaderboard_get(campaign=world.campaign, filters=default)
    assert stale
    fresh = leaderboard_snapshot_refresh(campaign=world.campaign, filters=default)
    row = next(r for r in fresh.result.runs if r.id == run.pk)
    assert (row.name, row.checkpoint, row.training_step, row.model) == (
        "renamed run" if edit == "run name" else run.name,
        "renamed checkpoint" if edit == "checkpoint name" else checkpoint.name,
        123_456 if edit == "training step" else checkpoint.training_step,
        "renamed model" if edit == "model name" else model.name)


# --- how many queries -------------------------------------------------------------------------


def _model_page_queries(n: int) -> int:
    """The queries of the model dashboard of a model rated by ``n`` campaigns, every board
    stored and fresh."""
    worlds = _campaigns_over_one_model(n)
    client = logged_in(worlds[0].scientist)
    url = f"/dashboard/models/{worlds[0].runs[0].checkpoint.model_id}/"
    assert client.get(url).status_code == 200  # computes and stores every campaign's board
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url)
    assert page.status_code == 200
    assert [c.name for c in page.context["campaigns"]] == [w.campaign.name for w in worlds]
    assert not [q for q in queries if SNAPSHOT_TABLE in q["sql"]
                and not q["sql"].startswith("SELECT")]  # nothing recomputed
    return len(queries)


def test_the_model_dashboard_reads_fresh_boards_with_the_same_queries_for_any_campaigns():
    assert _model_page_queries(2) == _model_page_queries(5)


def _pooled_queries(n: int, url: str) -> int:
    """The queries of ``url`` (``{id}``: the first campaign, ``{pool}``: the others) of a
    leaderboard pooling ``n - 1`` campaigns, its snapshot stored and fresh."""
    worlds = _campaigns_over_one_model(n)
    client = logged_in(worlds[0].scientist)
    url = url.format(id=worlds[0].campaign.pk,
                     pool=",".join(str(w.campaign.pk) for w in worlds[1:]))
    first = client.get(url)  # computes and stores the pooled board
    assert first.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url)
    assert again.status_code == 200
    assert not [q for q in queries if SNAPSHOT_TABLE in q["sql"]
                and not q["sql"].startswith("SELECT")]  # nothing recomputed
    return len(queries)


@pytest.mark.parametrize("url", ["/api/v1/campaigns/{id}/leaderboard/?pool={pool}",
                                 "/dashboard/campaigns/{id}/?pool={pool}"])
def test_a_pooled_leaderboard_reads_with_the_same_queries_for_any_campaigns_pooled(url):
    assert _pooled_queries(2, url) == _pooled_queries(5, url)


# --- staleness --------------------------------------------------------------------------------


def test_a_vote_makes_exactly_its_campaigns_board_stale():
    worlds = _campaigns_over_one_model(3)
    campaigns = [w.campaign for w in worlds]
    default = LeaderboardFilters()
    stored = leaderboards_get(campaigns=campaigns, filters=default)  # none stored: computed
    assert [stale for _, stale in stored] == [False] * 3
    assert [s.campaign_id for s, _ in stored] == [c.pk for c in campaigns]
    for voted in worlds:
        _vote_in(voted)
        read = leaderboards_get(campaigns=campaigns, filters=default)
        # A stale default board is served as it is (its refresh queued), as by leaderboard_get.
        assert [stale for _, stale in read] == [w is voted for w in worlds]
        assert [s.pk for s, _ in read] == [s.pk for s, _ in stored]
        assert [s.computed_at for s, _ in read] == [s.computed_at for s, _ in stored]
        assert [leaderboard_get(campaign=c, filters=default)[1] for c in campaigns] == [
            stale for _, stale in read]
        # The background refresh is queued for the campaigns voted in, and only for them.
        assert set(LeaderboardRefresh.objects.values_list("campaign_id", flat=True)) == {
            w.campaign.pk for w in worlds[:worlds.index(voted) + 1]}
        stored[worlds.index(voted)] = (
            leaderboard_snapshot_refresh(campaign=voted.campaign, filters=default), False)


def test_a_vote_in_a_pooled_campaign_makes_the_pool_stale_and_a_vote_elsewhere_does_not():
    worlds = _campaigns_over_one_model(4)
    pooled = LeaderboardFilters(pool=(worlds[1].campaign.pk, worlds[2].campaign.pk))
    board = worlds[0].campaign
    snapshot, _ = leaderboard_get(campaign=board, filters=pooled)

    _vote_in(worlds[3])  # a campaign of the project the board does not pool
    assert leaderboard_fingerprint(campaign=board, pool=pooled.pool) == snapshot.fingerprint
    again, stale = leaderboard_get(campaign=board, filters=pooled)
    assert not stale and again.computed_at == snapshot.computed_at

    for voted in worlds[2], worlds[1], worlds[0]:
        _vote_in(voted)
        assert leaderboard_fingerprint(campaign=board, pool=pooled.pool) != again.fingerprint
        # Not the default board: a stale pooled one is recomputed on the request.
        after, stale = leaderboard_get(campaign=board, filters=pooled)
        assert not stale and after.computed_at > again.computed_at
        again = after
