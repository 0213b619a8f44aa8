"""The empty-file warning says whether the file has rows, not whether some vote matched.

Pair grouping (``aggregate=pair``: a tie majority dropped by DPO) and ``min_agreement`` can
leave no row although votes match the filters: the API and the page still send
``X-Export-Warning`` then, and the command's warning and summary agree (no row, no vote, no
annotator behind the rows).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from evalhub.exports.services import EMPTY_MESSAGE

# Two annotators disagree on the one pair voted: its majority is a tie that no vote states
# (agreement 0).
SPLIT_ONLY = [
    {"format": "dpo-jsonl", "aggregate": "pair"},
    {"format": "pickapic-parquet", "aggregate": "pair", "ties": "drop"},
    {"format": "pickapic-parquet", "aggregate": "pair", "min_agreement": "0.75"},
    {"format": "raw-csv", "min_agreement": "0.75"},
    {"format": "dpo-jsonl", "min_agreement": "0.75"},
]


@pytest.fixture
def split(world):
    task = world.tasks[0]
    world.vote(task, world.annotators[0], "a")
    world.vote(task, world.annotators[1], "b")
    return world


def _api(world, user, **params):
    client = Client()
    client.force_login(user)
    return client.get(f"/api/v1/campaigns/{world.campaign.pk}/export/", params)


def _flags(params: dict) -> list[str]:
    return [part for name, value in params.items()
            for part in (f"--{name.replace('_', '-')}", value)]


@pytest.mark.parametrize("params", SPLIT_ONLY)
def test_the_api_warns_when_grouping_leaves_no_row(split, params):
    response = _api(split, split.scientist, **params)
    assert response.status_code == 200
    assert response["X-Export-Warning"] == EMPTY_MESSAGE
    body = b"".join(response.streaming_content)
    if params["format"] == "dpo-jsonl":
        assert body == b""


@pytest.mark.parametrize("params", SPLIT_ONLY[:2])
def test_the_page_warns_when_grouping_leaves_no_row(split, params):
    client = Client()
    client.force_login(split.scientist)
    response = client.get(f"/campaigns/{split.campaign.pk}/export/",
                          {"download": "1", **params})
    assert response.status_code == 200
    assert response["X-Export-Warning"] == EMPTY_MESSAGE


@pytest.mark.parametrize("params", [
    {"format": "pickapic-parquet", "aggregate": "pair"},  # the tie is kept
    {"format": "raw-csv", "min_agreement": "0"},
])
def test_no_warning_when_rows_are_written(split, params):
    response = _api(split, split.scientist, **params)
    assert response.status_code == 200 and "X-Export-Warning" not in response
    assert b"".join(response.streaming_content)


@pytest.mark.parametrize("params", SPLIT_ONLY)
def test_the_command_warns_and_its_summary_counts_nothing_behind_no_rows(split, tmp_path,
                                                                         params):
    out, err = io.StringIO(), io.StringIO()
    flags = _flags({k: v for k, v in params.items() if k != "format"})
    call_command("export_preferences", split.campaign.pk, "--format", params["format"],
                 "--output", str(tmp_path / "out"), *flags, stdout=out, stderr=err)
    assert EMPTY_MESSAGE in err.getvalue()
    assert "Wrote 0 rows (0 votes, 0 annotators)" in out.getvalue()


def test_a_pair_summary_counts_the_annotators_behind_its_rows(split, tmp_path):
    out = io.StringIO()
    call_command("export_preferences", split.campaign.pk, "--format", "pickapic-parquet",
                 "--aggregate", "pair", "--output", str(tmp_path / "out"), stdout=out)
    assert "Wrote 1 row (2 votes, 2 annotators)" in out.getvalue()
