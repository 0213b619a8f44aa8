"""Raw judgments (CSV and Parquet): every field of every vote, nothing more."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from evalhub.campaigns.serving.voting import vote_undo
from evalhub.exports.formats import RAW_SCHEMA
from tests.exports.helpers import alias, export, read


@pytest.fixture
def voted(world):
    t0, t1, t2, _ = world.tasks
    u0, u1, u2 = world.annotators
    world.vote(t0, u0, "a", a_side="left")
    world.vote(t0, u0, "b", a_side="left", criterion="aesthetics")
    world.vote(t0, u1, "tie", a_side="right")
    world.vote(t1, u2, "both_bad", a_side="right", latency_ms=900)
    world.vote(t2, u1, "b", a_side="left")
    return world


def test_raw_parquet_has_every_field_with_arrow_types(voted, tmp_path):
    path, summary = export(voted, tmp_path, "raw-parquet")

    assert pq.read_schema(path).remove_metadata() == RAW_SCHEMA
    frame = read(path, "raw-parquet")
    assert summary.rows == len(frame) == 5
    first = voted.judgments[0]
    row = frame.set_index("judgment_id").loc[first.pk]
    task = first.task
    assert row["task_id"] == task.pk and row["campaign_id"] == voted.campaign.pk
    assert (row["criterion"], row["outcome"], row["judge"]) == ("overall", "a", "human")
    assert row["annotator"] == alias(voted, voted.annotators[0])
    assert row["image_a_sha256"] == task.image_a.blob.sha256
    assert row["image_b_sha256"] == task.image_b.blob.sha256
    assert (row["run_a"], row["model_a"]) == ("run-0", "sdxl/step-0")
    assert (row["run_b"], row["model_b"]) == ("run-1", "sdxl/step-1")
    assert row["prompt"] == task.prompt.text and row["prompt_category"] == "colour"
    assert row["a_side"] == "left" and row["latency_ms"] == 1500
    assert row["client_id"] == str(first.client_id)
    assert not row["is_gold"]
    assert pd.isna(row["gold_answer"]) and pd.isna(row["metric_name"])
    assert row["created_at"] == first.created_at
    assert sorted(frame["outcome"]) == ["a", "b", "b", "both_bad", "tie"]


def test_raw_csv_reads_back_like_the_parquet(voted, tmp_path):
    csv_path, _ = export(voted, tmp_path, "raw-csv")
    parquet_path, _ = export(voted, tmp_path, "raw-parquet")

    csv, parquet = read(csv_path, "raw-csv"), read(parquet_path, "raw-parquet")
    assert list(csv.columns) == RAW_SCHEMA.names
    assert len(csv) == 5
    assert list(csv["judgment_id"]) == list(parquet["judgment_id"])
    assert list(csv["outcome"]) == list(parquet["outcome"])
    assert list(csv["annotator"]) == list(parquet["annotator"])


def test_undone_votes_never_appear(voted, tmp_path):
    undone = voted.judgments[4]
    vote_undo(annotator=undone.annotator, campaign=undone.campaign, client_id=undone.client_id)

    frame = read(export(voted, tmp_path, "raw-parquet")[0], "raw-parquet")
    assert undone.pk not in set(frame["judgment_id"])
    assert len(frame) == 4


def test_raw_usernames_only_when_asked(voted, tmp_path):
    frame = read(export(voted, tmp_path, "raw-parquet", raw_usernames=True)[0], "raw-parquet")
    assert set(frame["annotator"]) == {u.username for u in voted.annotators}
    pseudo = read(export(voted, tmp_path, "raw-parquet", name="p.parquet")[0], "raw-parquet")
    assert not set(pseudo["annotator"]) & {u.username for u in voted.annotators}
    assert all(len(a) == 16 for a in pseudo["annotator"])
