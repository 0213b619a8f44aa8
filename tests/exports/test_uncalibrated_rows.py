"""Rows of metric judges that scored with random weights: counted in the export's summary,
stated in the bundle's dataset card and in the command's summary, as each row states it in
its ``uncalibrated`` column."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command

from tests.exports.helpers import export, read


@pytest.fixture
def judged(world):
    """Three human votes, and metric judges on every task: two from random weights, one
    calibrated, one judged before calibration was recorded (counted as calibrated)."""
    t0, t1, t2, t3 = world.tasks
    u0, u1, _ = world.annotators
    world.vote(t0, u0, "a")
    world.vote(t1, u1, "b")
    world.vote(t2, u0, "a")
    world.metric_vote(t0, "a", calibrated=False)
    world.metric_vote(t1, "b", calibrated=False)
    world.metric_vote(t2, "a", calibrated=True)
    world.metric_vote(t3, "b", calibrated=None)
    return world


@pytest.mark.parametrize("fmt", ["dpo-jsonl", "raw-parquet"])
def test_the_summary_counts_the_rows_flagged_uncalibrated(judged, tmp_path, fmt):
    path, summary = export(judged, tmp_path, fmt, include_metric_judges=True)
    rows = read(path, fmt)
    assert (summary.rows, summary.uncalibrated) == (7, 2)
    assert int(rows["uncalibrated"].sum()) == summary.uncalibrated


def test_the_card_states_how_many_rows_are_uncalibrated_and_what_that_means(judged, tmp_path):
    path, _ = export(judged, tmp_path, "dpo-jsonl", bundle="zip", include_metric_judges=True)
    with zipfile.ZipFile(path) as archive:
        card = archive.read("README.md").decode()
        lines = [json.loads(line) for line in archive.read("preferences.jsonl").splitlines()]
    assert sum(line["uncalibrated"] for line in lines) == 2
    assert "- rows: 7" in card
    assert "- uncalibrated rows: 2 of 7" in card
    warning = card[card.index("**2 of the 7 rows are uncalibrated"):]
    assert "random weights" in warning[:400] and "`uncalibrated: true`" in warning[:400]
    assert "not comparable with published numbers" in warning[:400]


def test_a_card_without_uncalibrated_rows_says_none_and_warns_of_nothing(judged, tmp_path):
    path, _ = export(judged, tmp_path, "dpo-jsonl", bundle="zip")  # humans only
    card = zipfile.ZipFile(path).read("README.md").decode()
    assert "- uncalibrated rows: 0 of 3" in card
    assert "rows are uncalibrated" not in card


def test_the_command_says_how_many_rows_are_uncalibrated_when_some_are(judged, tmp_path):
    out = io.StringIO()
    call_command("export_preferences", judged.campaign.pk, "--format", "dpo-jsonl",
                 "--output", str(tmp_path / "all.jsonl"), "--metric-judges", stdout=out)
    assert ("2 of the 7 rows are uncalibrated metric judgments (random weights; "
            "`uncalibrated: true`): do not train on them.") in out.getvalue()

    humans = io.StringIO()
    call_command("export_preferences", judged.campaign.pk, "--format", "dpo-jsonl",
                 "--output", str(tmp_path / "humans.jsonl"), stdout=humans)
    assert "Wrote 3 rows" in humans.getvalue() and "uncalibrated" not in humans.getvalue()
