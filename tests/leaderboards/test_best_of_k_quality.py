"""Quality control for best-of-K votes (#17): the reliability estimate reads the rankings as
the pairs they imply (the earlier slot standing for the left side), and the leaderboards'
quality filter leaves out or weights rankings as it does pair votes, in the joint
Plackett-Luce fit."""

import html
import uuid

import numpy as np
import pytest
from django.test import Client

from evalhub.campaigns.models import Judgment, Lease, TaskImage, TaskKind
from evalhub.campaigns.quality.reliability import campaign_reliability
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.quality_snapshot import quality_get
from evalhub.leaderboards.selectors import leaderboard_compute
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _votes_take_their_time(settings):
    """The votes below are cast at machine speed; no fast-vote floor, so speed flags nobody."""
    settings.EVALHUB_FAST_VOTE_FLOOR_MS = 0

NAMES = ["best", "good", "fair", "poor"]
STRENGTHS = np.array([2.5, 1.0, -1.0, -2.5])  # log-strengths, nats
# The first-slot picker's picks land on whichever run the random display order put first, so
# its agreement with the consensus is luck. With 24 votes one CI run saw a weight of 0.136; the
# largest of 30 campaigns here was 0.052 with 24 votes and 0.025 with 48.
PROMPTS = 48


def _world():
    """Best of 4 over 4 runs, ``PROMPTS`` prompts; three annotators pick by Plackett-Luce from
    the runs' strengths, the fourth always picks the image in the first slot."""
    world = build_campaign(runs=4, prompts=PROMPTS, annotators=4, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4, judgments_per_pair=4)
    strength = {run.pk: s for run, s in zip(world.runs, STRENGTHS, strict=True)}
    rng = np.random.default_rng(3)
    *honest, first_slot = world.annotators
    for annotator in world.annotators:
        while not (payload := rate_next(annotator=annotator,
                                        campaign_id=world.campaign.pk)).get("done"):
            lease = Lease.objects.get(pk=payload["lease"])
            run_at = dict(TaskImage.objects.filter(task_id=lease.task_id)
                          .values_list("position", "run_id"))
            if annotator == first_slot:
                pick = 0
            else:
                w = np.exp([strength[run_at[lease.order[s]]] for s in range(4)])
                pick = int(rng.choice(4, p=w / w.sum()))
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": [pick]}))
    return world, honest, first_slot


def test_the_annotator_who_always_picks_the_first_slot_is_flagged_from_rankings():
    world, honest, first_slot = _world()
    rows = {row.annotator_id: row for row in
            campaign_reliability(campaign=world.campaign).annotators}

    assert set(rows) == {a.pk for a in world.annotators}
    assert rows[first_slot.pk].votes == PROMPTS  # one per ranking, not per implied pair
    assert "position" in rows[first_slot.pk].flags
    # A vote's 3 implied pairs weigh 1 together, all won from the earlier slot; shrunk towards
    # 1/2 by 10 virtual votes a side.
    assert rows[first_slot.pk].left_share == pytest.approx((PROMPTS + 10) / (PROMPTS + 20))
    assert rows[first_slot.pk].weight < 0.1
    for person in honest:
        assert rows[person.pk].flags == ()
        assert rows[person.pk].weight > 5 * rows[first_slot.pk].weight


def test_exclude_leaves_the_flagged_annotators_rankings_out_of_the_joint_fit():
    world, _honest, first_slot = _world()
    every = leaderboard_compute(campaign=world.campaign, filters=LeaderboardFilters())
    excluded = leaderboard_compute(campaign=world.campaign,
                                   filters=LeaderboardFilters(quality="exclude"))

    theirs = Judgment.objects.filter(annotator=first_slot, ranking__isnull=False).count()
    assert theirs == PROMPTS
    assert excluded.votes == every.votes - theirs
    # Each best-of-4 vote implies 3 pairs: the records lose theirs too.
    assert sum(r.wins for r in excluded.runs) == pytest.approx(3 * excluded.votes)


def test_weight_counts_each_ranking_with_its_annotators_weight():
    world, _honest, _first_slot = _world()
    weights = campaign_reliability(campaign=world.campaign).weights()
    board = leaderboard_compute(campaign=world.campaign,
                                filters=LeaderboardFilters(quality="weight"))

    voters = Judgment.objects.filter(ranking__isnull=False).values_list("annotator_id",
                                                                        flat=True)
    expected = sum(weights[aid] for aid in voters)
    assert board.votes == round(expected)  # the sum of weights, to the nearest vote
    assert sum(r.wins for r in board.runs) == pytest.approx(3 * expected, abs=0.5)
    # One pick per vote says little about the two weakest (rarely picked); the top is clear.
    assert [r.name for r in board.runs[:2]] == NAMES[:2]


def test_the_campaign_page_and_the_quality_api_show_the_flags_the_dashboard_shows():
    """Best of K has no gold pairs: the flags that leave the first-slot picker out (side habit,
    disagreement with the ranking) are the estimate's, and every page shows them."""
    world, honest, first_slot = _world()
    scientist = Client()
    scientist.force_login(world.scientist)
    dashboard = scientist.get(f"/dashboard/campaigns/{world.campaign.pk}/",
                              {"quality": "exclude"}).content.decode()
    row = dashboard.split(f'<tr data-annotator="{first_slot.username}">')[1].split("</tr>")[0]
    stored = {r.annotator_id: r for r in
              quality_get(campaign=world.campaign).reliability.annotators}[first_slot.pk]
    assert "position" in stored.flags
    assert "; ".join(stored.reasons) in html.unescape(row) and "left out" in row

    api = scientist.get(f"/api/v1/campaigns/{world.campaign.pk}/quality/").json()
    by_id = {r["annotator_id"]: r for r in api["annotators"]}
    assert by_id[first_slot.pk]["flags"] == list(stored.flags)
    assert by_id[first_slot.pk]["reasons"] == list(stored.reasons)
    assert by_id[first_slot.pk]["weight"] == pytest.approx(stored.weight)
    assert all(by_id[a.pk]["flags"] == [] for a in honest)

    page = scientist.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    manage_row = page.split(f'data-annotator="{first_slot.username}"')[1].split("</tr>")[0]
    assert f'data-flags="{" ".join(stored.flags)}"' in manage_row
    assert "; ".join(stored.reasons) in html.unescape(manage_row)
    assert f"{stored.weight_percent} %" in manage_row
    assert "1 flagged or excluded" in page
