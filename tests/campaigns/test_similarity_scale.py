"""The LPIPS near-duplicate filter at scale (building/similarity.py): the stored distances of a
campaign's pairs are read a chunk of pairs at a time, so a build over more pairs than one
statement may bind (PostgreSQL 65,535 values, SQLite 32,766; the filter binds two ids a pair)
still runs, with the distances an unchunked read gives.

The chunk size is made small here (``evalhub.core.bounded.IN_CHUNK``) so that a handful of
pairs spans several chunks; a probe at the real size (100,000 pairs) is in the helper's report.
"""

from __future__ import annotations

import math

import pytest

from evalhub.campaigns.building.similarity import lpips_pair_distances
from evalhub.core import bounded
from evalhub.evaluation.models import MetricName, PairMetric
from tests.builders import build_campaign
from tests.statements import statements

pytestmark = pytest.mark.django_db

RANDOM_BACKBONE = "lpips:alex/v0.1+random:0"  # metrics.lpips_distance, weights="random", seed 0
SMALL_CHUNK = 2
PAIR_METRIC_TABLE = PairMetric._meta.db_table


@pytest.fixture
def random_weights(monkeypatch):
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")


def _stored(a, b, value: float) -> PairMetric:
    return PairMetric(image_a=a, image_b=b, metric=MetricName.LPIPS, value=value,
                      backbone_id=RANDOM_BACKBONE, weights_sha256="random:0", calibrated=False)


def test_stored_distances_are_read_a_chunk_of_pairs_at_a_time_with_the_same_result(
        random_weights, monkeypatch):
    world = build_campaign(runs=2, prompts=5)
    pairs = [(task.image_a, task.image_b) for task in world.tasks]
    assert len(pairs) == 5 > 2 * SMALL_CHUNK  # three chunks: (0, 1), (2, 3), (4)
    # Pairs 0, 1 and 3 have a distance stored (values no LPIPS computation would give);
    # pairs 2 and 4 have none and are computed. A distance between image A of pair 0 and
    # image B of pair 1 (not a pair of the campaign, but inside the first chunk's filter)
    # must not stand in for either.
    PairMetric.objects.bulk_create([
        _stored(*pairs[0], 7.0), _stored(*pairs[1], 8.0), _stored(*pairs[3], 9.0),
        _stored(pairs[0][0], pairs[1][1], 5.0)])
    monkeypatch.setattr(bounded, "IN_CHUNK", SMALL_CHUNK)

    with statements() as bound:
        distances = lpips_pair_distances(pairs)

    assert distances is not None
    assert (distances.backbone_id, distances.calibrated) == (RANDOM_BACKBONE, False)
    assert [distances.values[k] for k in (0, 1, 3)] == [7.0, 8.0, 9.0]
    assert all(0.0 <= distances.values[k] < 5.0 for k in (2, 4))  # computed, then stored
    # One read per chunk, each binding the ids of one chunk of pairs and its three other
    # filters; the ids of all pairs at once would be 2 * 5 + 3 = 13 values.
    reads = [len(params) for sql, params in bound
             if sql.lstrip().upper().startswith("SELECT") and PAIR_METRIC_TABLE in sql]
    assert len(reads) == math.ceil(len(pairs) / SMALL_CHUNK)
    assert max(reads) <= 2 * SMALL_CHUNK + 3

    # An unchunked read of the same rows (the pre-chunking filter) gives the same distances.
    monkeypatch.setattr(bounded, "IN_CHUNK", 10_000)
    again = lpips_pair_distances(pairs)
    assert again is not None and again.values == distances.values
    assert PairMetric.objects.filter(backbone_id=RANDOM_BACKBONE).count() == 6
