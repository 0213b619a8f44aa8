"""Every export row of a human vote carries its annotator's reliability (the crowd-BT weight a
weighted leaderboard gives their votes); metric judgments and rows by pair carry none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from evalhub.campaigns.models import Lease
from evalhub.campaigns.quality.reliability import campaign_reliability
from tests.exports.helpers import alias, export, read


@pytest.fixture
def voted(world):
    steady, lefty, _ = world.annotators
    for k, task in enumerate(world.tasks):
        world.vote(task, steady, "a", a_side="left" if k % 2 else "right")
        world.vote(task, lefty, "a" if k % 2 else "b", a_side="left" if k % 2 else "right")
    # Both looked at each pair for five seconds (no vote is under the fast-vote floor).
    Lease.objects.update(leased_at=F("leased_at") - timedelta(seconds=5))
    world.metric_vote(world.tasks[0], "b", metric="clip_score")
    weights = campaign_reliability(campaign=world.campaign).weights()
    return world, {alias(world, user): weights[user.pk] for user in (steady, lefty)}


@pytest.mark.parametrize("fmt, who", [("raw-parquet", "annotator"), ("raw-csv", "annotator"),
                                      ("dpo-jsonl", "annotator"),
                                      ("pickapic-parquet", "user_id")])
def test_each_human_row_carries_its_annotators_weight(voted, tmp_path, fmt, who):
    world, expected = voted
    frame = read(export(world, tmp_path, fmt, image_bytes=False, include_metric_judges=True)[0]
                 if fmt == "pickapic-parquet" else
                 export(world, tmp_path, fmt, include_metric_judges=True)[0], fmt)

    human = frame[frame[who].notna()]
    assert len(human) > 0
    for name, weight in zip(human[who], human["annotator_reliability"], strict=True):
        assert weight == pytest.approx(expected[name])
    assert 0.0 < min(expected.values()) <= max(expected.values()) <= 1.0
    assert frame[frame[who].isna()]["annotator_reliability"].isna().all()


def test_rows_by_pair_have_no_annotator_and_no_reliability(voted, tmp_path):
    world, _ = voted
    frame = read(export(world, tmp_path, "pickapic-parquet", aggregate="pair",
                        image_bytes=False)[0], "pickapic-parquet")
    assert frame["user_id"].isna().all() and frame["annotator_reliability"].isna().all()
