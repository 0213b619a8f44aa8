"""raw-csv reads with the same column types whatever the campaign holds.

A float column is written with a decimal point (``1.0``, never ``1``), so pandas reads it as
float64 even when every value is a whole number; integer columns that can be empty are read
with the dtype docs/exports.md gives (the Parquet schema's int64, nullable). Checked on a
pairwise campaign (weight 1 everywhere, no screen) and a best-of-K one.
"""

from __future__ import annotations

import ast
import csv
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest

from evalhub.campaigns.models import Lease, TaskKind
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.exports.formats import RAW_SCHEMA
from tests.builders import build_campaign
from tests.exports.helpers import export

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "exports.md"
FLOATS = [f.name for f in RAW_SCHEMA if str(f.type) == "double"]
INTEGERS = [f.name for f in RAW_SCHEMA if str(f.type) == "int64"]
BOOLS = [f.name for f in RAW_SCHEMA if str(f.type) == "bool"]


def documented_dtypes() -> dict[str, str]:
    """The ``dtype=`` argument docs/exports.md gives for reading the CSV with pandas."""
    found = re.search(r'pd\.read_csv\("judgments\.csv", dtype=(\{[^}]*\})\)',
                      DOC.read_text(encoding="utf-8"))
    assert found, "docs/exports.md gives no pd.read_csv(..., dtype=...) for raw-csv"
    return ast.literal_eval(found.group(1))


@pytest.fixture
def pairwise(world):
    world.vote(world.tasks[0], world.annotators[0], "a")
    world.vote(world.tasks[0], world.annotators[1], "a")
    world.vote(world.tasks[1], world.annotators[0], "b")
    world.metric_vote(world.tasks[1], "a")  # no annotator, no latency
    return world


@pytest.fixture
def best_of_k(db):
    world = build_campaign(runs=4, prompts=2, annotators=2, task_kind=TaskKind.BEST_OF_K, k=4)
    for annotator, slots in zip(world.annotators, ([2], [0]), strict=True):
        payload = rate_next(annotator=annotator, campaign_id=world.campaign.pk)
        lease = Lease.objects.get(pk=payload["lease"])
        rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                  vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": slots}))
    return world


@pytest.fixture(params=["pairwise", "best_of_k"])
def csv_path(request, tmp_path) -> Path:
    world = request.getfixturevalue(request.param)
    path, summary = export(world, tmp_path, "raw-csv", include_metric_judges=True)
    assert summary.rows >= 3
    return path


def test_float_cells_always_have_a_decimal_point(csv_path):
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for name in FLOATS:
        cells = [row[name] for row in rows if row[name] != ""]
        assert cells, name
        assert all("." in cell or "e" in cell for cell in cells), (name, cells)


def test_pandas_reads_the_float_columns_as_float64(csv_path):
    frame = pd.read_csv(csv_path)
    assert {name: str(frame[name].dtype) for name in FLOATS} == dict.fromkeys(FLOATS,
                                                                               "float64")
    assert {name: str(frame[name].dtype) for name in BOOLS} == dict.fromkeys(BOOLS, "bool")


def test_the_documented_dtypes_give_the_parquet_schemas_types(csv_path):
    frame = pd.read_csv(csv_path, dtype=documented_dtypes())
    types = {name: str(frame[name].dtype) for name in [*INTEGERS, *FLOATS, *BOOLS]}
    assert types == {**{name: ("Int64" if name in documented_dtypes() else "int64")
                        for name in INTEGERS},
                     **dict.fromkeys(FLOATS, "float64"), **dict.fromkeys(BOOLS, "bool")}
