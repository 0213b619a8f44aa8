"""Pick-a-Pic Parquet and DPO JSONL: labels follow the votes, never the displayed side."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from evalhub.campaigns.quality.annotators import annotator_set_excluded
from evalhub.exports.formats import DPO_KEYS
from evalhub.exports.options import ExportOptions
from evalhub.exports.selectors import majority
from tests.builders import cast_vote
from tests.exports.conftest import build_world
from tests.exports.helpers import alias, export, read


def test_pickapic_labels_ties_and_image_bytes(world, tmp_path):
    t0, t1, t2, _ = world.tasks
    u0, u1, _ = world.annotators
    world.vote(t0, u0, "a", a_side="right")
    world.vote(t1, u0, "b", a_side="left")
    world.vote(t2, u1, "tie", a_side="left")
    world.vote(t2, u0, "both_bad")  # dropped by default in Pick-a-Pic

    path, summary = export(world, tmp_path, "pickapic-parquet")
    frame = read(path, "pickapic-parquet").set_index("task_id")

    assert pq.read_schema(path).field("jpg_0").type == pa.binary()
    assert summary.rows == len(frame) == 3
    assert frame["label_0"].dtype == "float64"
    assert (frame.loc[t0.pk, "label_0"], frame.loc[t0.pk, "label_1"]) == (1.0, 0.0)
    assert (frame.loc[t1.pk, "label_0"], frame.loc[t1.pk, "label_1"]) == (0.0, 1.0)
    assert (frame.loc[t2.pk, "label_0"], frame.loc[t2.pk, "label_1"]) == (0.5, 0.5)
    assert pd.isna(frame.loc[t2.pk, "best_image_uid"])
    row = frame.loc[t0.pk]
    assert row["image_0_uid"] == t0.image_a.blob.sha256 == row["best_image_uid"]
    assert row["image_0_side"] == "right"
    assert row["jpg_0"] == t0.image_a.blob.file.open("rb").read()
    assert row["jpg_1"] == t0.image_b.blob.file.open("rb").read()
    assert (row["model_0"], row["model_1"]) == ("sdxl/step-0", "sdxl/step-1")
    assert row["user_id"] == alias(world, u0)
    assert row["caption"] == t0.prompt.text and row["criterion"] == "overall"
    assert row["judge"] == "human" and row["votes"] == 1 and bool(row["has_label"])


def test_pickapic_without_bytes_holds_references(world, tmp_path):
    world.vote(world.tasks[0], world.annotators[0], "a")
    path, _ = export(world, tmp_path, "pickapic-parquet", image_bytes=False,
                     base_url="https://data.example/prefs/")
    row = read(path, "pickapic-parquet").iloc[0]
    sha = world.tasks[0].image_a.blob.sha256
    assert row["jpg_0"] == row["image_0_url"] == f"https://data.example/prefs/images/{sha}.png"


@pytest.mark.parametrize("answer", ["left", "right"])
def test_dpo_chosen_is_the_preferred_image_whatever_side_it_was_shown(world, tmp_path, answer):
    annotator = world.annotators[0]
    for _ in range(2):
        cast_vote(world.campaign, annotator, answer)

    path, _ = export(world, tmp_path, "dpo-jsonl", criteria=("overall",))
    frame = read(path, "dpo-jsonl")
    assert list(frame.columns) == list(DPO_KEYS)
    assert len(frame) == 2
    for row in frame.itertuples():
        task = next(t for t in world.tasks if t.pk == row.task_id)
        a_side = task.leases.get().a_side
        picked = task.image_a if a_side == answer else task.image_b
        other = task.image_b if picked == task.image_a else task.image_a
        assert row.chosen_sha256 == picked.blob.sha256
        assert row.rejected_sha256 == other.blob.sha256
        assert row.chosen == f"images/{picked.blob.sha256}.png"
        assert row.chosen_side == answer
        assert row.chosen_run_id == picked.run_id and row.prompt == task.prompt.text


def test_dpo_has_no_ties_and_refuses_to_keep_them(world, tmp_path):
    world.vote(world.tasks[0], world.annotators[0], "tie")
    world.vote(world.tasks[1], world.annotators[0], "both_bad")
    world.vote(world.tasks[2], world.annotators[0], "b")
    assert len(read(export(world, tmp_path, "dpo-jsonl")[0], "dpo-jsonl")) == 1
    with pytest.raises(Exception, match="ties and both-bad"):
        ExportOptions(format="dpo-jsonl", include_ties=True)


def test_majority_rule_matches_the_ratings_package():
    assert majority(2, 1, 0) == ("a", 2 / 3)
    assert majority(1, 1, 0) == ("tie", 0.0)
    assert majority(0, 1, 2) == ("tie", 2 / 3)
    assert majority(0, 3, 0) == ("b", 1.0)


def test_pair_aggregation_majority_and_agreement(world, tmp_path):
    t0, t1, t2, _ = world.tasks
    u0, u1, u2 = world.annotators
    for user, outcome in zip((u0, u1, u2), ("a", "a", "b"), strict=True):
        world.vote(t0, user, outcome)
    world.vote(t1, u0, "a")
    world.vote(t1, u1, "b")  # 1-1: a tie by majority
    world.vote(t2, u0, "b")
    world.vote(t2, u1, "b")

    path, summary = export(world, tmp_path, "pickapic-parquet", aggregate="pair",
                           image_bytes=False)
    assert summary.annotators == 3  # whose votes the pairs pool, though rows name none
    frame = read(path, "pickapic-parquet").set_index("task_id")
    assert len(frame) == 3
    assert (frame.loc[t0.pk, "label_0"], frame.loc[t0.pk, "votes"]) == (1.0, 3)
    assert frame.loc[t0.pk, "agreement"] == pytest.approx(2 / 3)
    assert frame.loc[t1.pk, "label_0"] == 0.5 and frame.loc[t1.pk, "agreement"] == 0.0
    assert frame.loc[t2.pk, "label_1"] == 1.0 and frame.loc[t2.pk, "agreement"] == 1.0
    assert frame["user_id"].isna().all() and frame["ranking_id"].isna().all()

    dpo = read(export(world, tmp_path, "dpo-jsonl", aggregate="pair",
                      min_agreement=0.9)[0], "dpo-jsonl")
    assert list(dpo["task_id"]) == [t2.pk]  # t0 agrees at 2/3; t1 is a tie
    assert dpo.iloc[0]["votes"] == 2 and pd.isna(dpo.iloc[0]["annotator"])


def test_min_agreement_by_judgment_keeps_votes_of_agreeing_pairs(world, tmp_path):
    t0, t1, _, _ = world.tasks
    u0, u1, u2 = world.annotators
    for user, outcome in zip((u0, u1, u2), ("a", "a", "b"), strict=True):
        world.vote(t0, user, outcome)
    world.vote(t1, u0, "b")
    frame = read(export(world, tmp_path, "raw-parquet", min_agreement=0.8)[0], "raw-parquet")
    assert list(frame["task_id"]) == [t1.pk]


def test_gold_accuracy_threshold_drops_a_careless_annotator(db, tmp_path):
    world = build_world(with_gold=True)
    careful, careless, _ = world.annotators
    world.vote(world.gold, careful, "a")  # gold answer is "a"
    world.vote(world.gold, careless, "b")
    world.vote(world.tasks[0], careful, "a")
    world.vote(world.tasks[0], careless, "b")

    frame = read(export(world, tmp_path, "raw-parquet", min_gold_accuracy=0.7)[0], "raw-parquet")
    assert set(frame["annotator"]) == {alias(world, careful)}
    assert not frame["is_gold"].any()  # gold pairs are not training data
    everything = read(export(world, tmp_path, "raw-parquet", name="all.parquet",
                             include_gold=True)[0], "raw-parquet")
    assert everything["is_gold"].sum() == 2 and len(everything) == 4


def test_excluded_annotators_are_dropped_unless_asked(world, tmp_path):
    kept, excluded, _ = world.annotators
    world.vote(world.tasks[0], kept, "a")
    world.vote(world.tasks[0], excluded, "b")
    annotator_set_excluded(campaign=world.campaign, annotator_id=excluded.pk, excluded=True)

    frame = read(export(world, tmp_path, "raw-parquet")[0], "raw-parquet")
    assert set(frame["annotator"]) == {alias(world, kept)}
    both = read(export(world, tmp_path, "raw-parquet", name="b.parquet",
                       include_excluded=True)[0], "raw-parquet")
    assert len(both) == 2


def test_metric_judgments_only_when_asked_and_labelled(world, tmp_path):
    world.vote(world.tasks[0], world.annotators[0], "a")
    world.metric_vote(world.tasks[0], "b", metric="clip_score")

    humans = read(export(world, tmp_path, "dpo-jsonl")[0], "dpo-jsonl")
    assert list(humans["judge"]) == ["human"]
    both = read(export(world, tmp_path, "dpo-jsonl", name="m.jsonl",
                       include_metric_judges=True)[0], "dpo-jsonl").set_index("judge")
    assert both.loc["metric", "metric_name"] == "clip_score"
    assert pd.isna(both.loc["metric", "annotator"])
    assert both.loc["metric", "chosen_sha256"] == world.tasks[0].image_b.blob.sha256


@pytest.mark.parametrize("fmt", ["dpo-jsonl", "raw-parquet", "raw-csv", "pickapic-parquet"])
def test_metric_judgments_from_random_weights_are_flagged_uncalibrated(world, tmp_path, fmt):
    world.vote(world.tasks[0], world.annotators[0], "a")
    world.metric_vote(world.tasks[0], "b", metric="clip_score", calibrated=False)
    world.metric_vote(world.tasks[1], "a", metric="hps", calibrated=True)

    frame = read(export(world, tmp_path, fmt, include_metric_judges=True)[0], fmt)
    flags = {(row["judge"], row["metric_name"] if isinstance(row["metric_name"], str) else ""):
             bool(row["uncalibrated"]) for _, row in frame.iterrows()}
    assert flags == {("human", ""): False, ("metric", "clip_score"): True,
                     ("metric", "hps"): False}


def test_criterion_category_and_date_filters(world, tmp_path):
    now = timezone.now()
    t0, t1, _, _ = world.tasks  # categories colour, counting
    user = world.annotators[0]
    world.vote(t0, user, "a", at=now - timedelta(days=10))
    world.vote(t0, user, "b", criterion="aesthetics", at=now - timedelta(days=10))
    world.vote(t1, user, "a", at=now)

    def rows(**options):
        path, _ = export(world, tmp_path, "raw-parquet", name=f"{uuid.uuid4()}.parquet",
                         **options)
        return read(path, "raw-parquet")

    assert list(rows(criteria=("aesthetics",))["criterion"]) == ["aesthetics"]
    assert set(rows(prompt_category="counting")["task_id"]) == {t1.pk}
    assert set(rows(since=now - timedelta(days=1))["task_id"]) == {t1.pk}
    assert len(rows(until=now - timedelta(days=1))) == 2
