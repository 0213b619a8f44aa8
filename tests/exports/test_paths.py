"""The PostgreSQL COPY path and the portable ORM path write the same exports, byte for byte.

On PostgreSQL each export is written twice, once through ``COPY ... TO STDOUT`` and once with
the portable path forced (``sources.USE_COPY = False``), and the files are compared value by
value. JSONL lines are also checked against ``json.dumps`` (the encoder the Arrow-built lines
replace), and the timestamp format against Python's ``datetime``.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection

from evalhub.exports import sources
from evalhub.exports.jsonl import iso_utc, json_lines
from evalhub.prompts.models import Prompt
from tests.exports.helpers import export

ODD_TEXT = 'quote " back\\slash \n newline \t tab \x01 ctrl é 🙂 end'

CASES = [
    ("raw-parquet", {}),
    ("raw-parquet", {"include_metric_judges": True, "include_gold": True,
                     "raw_usernames": True}),
    ("raw-parquet", {"min_agreement": 0.5}),
    ("raw-csv", {"include_metric_judges": True}),
    ("pickapic-parquet", {"image_bytes": False}),
    ("pickapic-parquet", {"image_bytes": True, "include_metric_judges": True}),
    ("pickapic-parquet", {"aggregate": "pair", "image_bytes": False,
                          "base_url": "https://data.example/p"}),
    ("dpo-jsonl", {}),
    ("dpo-jsonl", {"include_metric_judges": True, "base_url": "https://data.example/p/"}),
    ("dpo-jsonl", {"aggregate": "pair", "min_agreement": 0.5}),
    ("dpo-jsonl", {"bundle": "zip"}),
    # Several COPY chunks per export, and batches that end inside a pair.
    ("dpo-jsonl", {"include_metric_judges": True, "batch_size": 3}),
    ("raw-csv", {"include_metric_judges": True, "batch_size": 4}),
    ("pickapic-parquet", {"aggregate": "pair", "image_bytes": False, "batch_size": 2,
                          "include_metric_judges": True}),
]


@pytest.fixture
def varied(db):
    from tests.exports.conftest import build_world

    world = build_world(with_gold=True)
    Prompt.objects.filter(pk=world.tasks[1].prompt_id).update(text=ODD_TEXT)
    t0, t1, t2, t3 = world.tasks
    u0, u1, u2 = world.annotators
    world.vote(t0, u0, "a", a_side="right")
    world.vote(t0, u1, "a", a_side="left", latency_ms=700)
    world.vote(t0, u2, "b", criterion="aesthetics")
    world.vote(t1, u0, "b", a_side="left")
    world.vote(t1, u1, "tie")
    world.vote(t2, u2, "both_bad", a_side="right")
    world.vote(t3, u0, "b")
    world.vote(world.gold, u1, "a")
    world.metric_vote(t0, "b", metric="clip_score")
    world.metric_vote(t1, "a", metric="hps")
    return world


def _both(world, tmp_path, monkeypatch, fmt, options):
    fast, fast_summary = export(world, tmp_path, fmt, name=f"fast-{fmt}", **options)
    monkeypatch.setattr(sources, "USE_COPY", False)
    portable, portable_summary = export(world, tmp_path, fmt, name=f"orm-{fmt}", **options)
    monkeypatch.setattr(sources, "USE_COPY", True)
    assert (fast_summary.rows, fast_summary.votes, fast_summary.outcomes) == (
        portable_summary.rows, portable_summary.votes, portable_summary.outcomes)
    assert fast_summary.annotators == portable_summary.annotators
    assert fast_summary.images == portable_summary.images
    return fast, portable


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
@pytest.mark.parametrize(("fmt", "options"), CASES)
def test_copy_and_portable_paths_write_the_same_export(varied, tmp_path, monkeypatch, fmt,
                                                       options):
    assert sources.copy_available()
    fast, portable = _both(varied, tmp_path, monkeypatch, fmt, options)
    if fmt.endswith("parquet"):
        a, b = pq.read_table(fast), pq.read_table(portable)
        assert a.schema == b.schema
        assert a.num_rows == b.num_rows > 0
        for name in a.column_names:
            assert a[name].to_pylist() == b[name].to_pylist(), name
    elif options.get("bundle") == "zip":
        import zipfile

        with zipfile.ZipFile(fast) as x, zipfile.ZipFile(portable) as y:
            assert sorted(x.namelist()) == sorted(y.namelist())
            for name in x.namelist():
                if name != "README.md":  # holds the export time
                    assert x.read(name) == y.read(name), name
    else:
        assert fast.read_bytes() == portable.read_bytes()
        assert fast.stat().st_size > 0


@pytest.fixture
def crowded(db):
    """Pairs with many votes each: ties by majority, both-bad votes, metric judges."""
    from tests.exports.conftest import build_world

    world = build_world(annotators=5)
    t0, t1, t2, t3 = world.tasks
    votes = {t0: "a a b tie both_bad", t1: "a b tie both_bad b", t2: "both_bad both_bad a",
             t3: "b b b a a"}
    for task, outcomes in votes.items():
        for user, outcome in zip(world.annotators, outcomes.split(), strict=False):
            world.vote(task, user, outcome)
            world.vote(task, user, outcome, criterion="aesthetics")
    world.metric_vote(t0, "a", metric="clip_score", calibrated=False)
    world.metric_vote(t0, "b", metric="hps", calibrated=True)
    world.metric_vote(t1, "b", metric="clip_score", calibrated=True)
    world.metric_vote(t1, "a", metric="clip_score", calibrated=False, criterion="aesthetics")
    world.metric_vote(t2, "a", metric="hps", calibrated=None)
    return world


PAIR_CASES = [
    ("pickapic-parquet", {"aggregate": "pair", "image_bytes": False,
                          "include_metric_judges": True}),
    ("pickapic-parquet", {"aggregate": "pair", "image_bytes": False, "include_both_bad": True,
                          "include_metric_judges": True, "batch_size": 3}),
    ("pickapic-parquet", {"aggregate": "pair", "image_bytes": False, "min_agreement": 0.6,
                          "criteria": ("aesthetics",)}),
    ("dpo-jsonl", {"aggregate": "pair", "include_metric_judges": True}),
    ("dpo-jsonl", {"aggregate": "pair", "include_both_bad": False, "min_agreement": 0.5}),
    # By judgment, --min-agreement keeps the votes of agreeing pairs (and their agreement).
    ("raw-parquet", {"min_agreement": 0.5, "include_metric_judges": True}),
    ("raw-csv", {"min_agreement": 0.4, "batch_size": 2}),
    ("dpo-jsonl", {"min_agreement": 0.6, "include_metric_judges": True}),
]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL grouping is PostgreSQL's")
@pytest.mark.parametrize(("fmt", "options"), PAIR_CASES)
def test_pairs_and_agreements_from_postgresql_equal_those_computed_in_python(crowded, tmp_path,
                                                                  monkeypatch, fmt, options):
    fast, portable = _both(crowded, tmp_path, monkeypatch, fmt, options)
    if fmt in ("dpo-jsonl", "raw-csv"):
        assert fast.read_bytes() == portable.read_bytes()
        assert fast.stat().st_size > 0
        return
    a, b = pq.read_table(fast), pq.read_table(portable)
    assert a.schema == b.schema
    assert a.num_rows == b.num_rows > 0
    for name in a.column_names:
        assert a[name].to_pylist() == b[name].to_pylist(), name


def test_a_metric_pair_keeps_its_vote_s_calibration(crowded, tmp_path):
    path, _ = export(crowded, tmp_path, "pickapic-parquet", aggregate="pair",
                     image_bytes=False, include_metric_judges=True)
    table = pq.read_table(path).to_pandas()
    metric = table[table["judge"] == "metric"].set_index(["task_id", "metric_name"])
    t0, t1, t2, _ = crowded.tasks
    metric = metric[metric["criterion"] == "overall"]
    assert bool(metric.loc[(t0.pk, "clip_score"), "uncalibrated"]) is True
    assert bool(metric.loc[(t0.pk, "hps"), "uncalibrated"]) is False
    assert bool(metric.loc[(t1.pk, "clip_score"), "uncalibrated"]) is False
    assert bool(metric.loc[(t2.pk, "hps"), "uncalibrated"]) is False  # not recorded


def test_jsonl_lines_are_what_json_dumps_writes(varied, tmp_path):
    path, summary = export(varied, tmp_path, "dpo-jsonl", include_metric_judges=True,
                           aggregate="judgment")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == summary.rows > 0
    assert any("ctrl" in line for line in lines)
    for line in lines:
        value = json.loads(line)
        assert line == json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def test_json_lines_encode_strings_numbers_and_nulls_like_json_dumps():
    strings = ["plain", ODD_TEXT, "", None, "\\", '"', "\x1f\x7f", "é🙂"]
    floats = [1.0, 2 / 3, 0.0, None, 1e-05, 0.1, 5e20, 0.5]
    ints = [0, -1, 2**62, None, 7, 8, 9, 10]
    blob = json_lines(("s", "f", "i"), [pa.array(strings), pa.array(floats), pa.array(ints)])
    expected = "".join(json.dumps({"s": s, "f": f, "i": i}, ensure_ascii=False,
                                  separators=(",", ":")) + "\n"
                       for s, f, i in zip(strings, floats, ints, strict=True))
    assert blob.decode("utf-8") == expected


def test_json_lines_of_repeating_columns_are_what_json_dumps_writes():
    """Columns that repeat together are assembled in blocks; the bytes must not change."""
    rng = random.Random(11)
    n = 3000
    texts = ["plain", ODD_TEXT, "", None, "é🙂", '"', "tab\t"]
    columns = {
        "task": [rng.randint(0, 40) for _ in range(n)],
        "prompt": [None] * n,
        "model": [rng.choice(["m/1", "m/2", None]) for _ in range(n)],
        "flag": [rng.choice([True, False, None]) for _ in range(n)],
        "text": [rng.choice(texts) for _ in range(n)],
        "ratio": [rng.choice([0.5, 2 / 3, 1.0, None]) for _ in range(n)],
        "id": list(range(n)),
        "unique": [f"u{i}" for i in range(n)],
        "note": [rng.choice(texts) for _ in range(n)],
    }
    columns["prompt"] = [f"prompt of {task}" for task in columns["task"]]  # moves with task
    arrays = [pa.array(values) for values in columns.values()]
    blob = json_lines(tuple(columns), arrays)
    expected = "".join(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False,
                                  separators=(",", ":")) + "\n"
                       for row in zip(*columns.values(), strict=True))
    assert blob.decode("utf-8") == expected


def test_json_lines_write_timestamps_as_iso_utc_strings():
    values = pa.array([0, None, -1, 1_740_830_405_123_456], pa.int64()).cast(
        pa.timestamp("us", tz="UTC"))
    blob = json_lines(("at",), [values])
    assert blob.decode() == ('{"at":"1970-01-01T00:00:00.000000Z"}\n{"at":null}\n'
                             '{"at":"1969-12-31T23:59:59.999999Z"}\n'
                             '{"at":"2025-03-01T12:00:05.123456Z"}\n')
    assert iso_utc(values).to_pylist() == ["1970-01-01T00:00:00.000000Z", None,
                                           "1969-12-31T23:59:59.999999Z",
                                           "2025-03-01T12:00:05.123456Z"]


def test_iso_utc_writes_what_python_datetime_writes():
    rng = random.Random(3)
    micros = [rng.randint(-2_000_000_000_000_000, 8_000_000_000_000_000) for _ in range(5000)]
    micros += [0, -1, 86_400_000_000 - 1, 86_400_000_000, None]
    values = pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = [None if m is None else
                (epoch + timedelta(microseconds=m)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                for m in micros]
    assert iso_utc(values).to_pylist() == expected


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_an_abandoned_copy_leaves_the_connection_usable(varied):
    from evalhub.campaigns.models import Judgment
    from evalhub.exports.options import ExportOptions
    from evalhub.exports.selectors import judgment_batches

    options = ExportOptions(format="raw-parquet", include_metric_judges=True, batch_size=1)
    batches = judgment_batches(campaign=varied.campaign, options=options)
    assert next(batches).num_rows == 1
    batches.close()  # a client that goes away mid-download
    assert Judgment.objects.filter(campaign=varied.campaign).count() == 10
