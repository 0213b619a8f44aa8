"""Specification of vote aggregation (ratings.counts)."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import aggregate_cells, aggregate_counts, encode_outcomes, simulate_votes

A_IDX = [0, 1, 0, 2, 2, 1]
B_IDX = [1, 0, 2, 0, 1, 2]
OUTCOMES = ["a", "a", "tie", "both_bad", "b", "b"]


def test_counts_follow_the_convention_ties_half_each_way():
    wins = aggregate_counts(A_IDX, B_IDX, OUTCOMES, 3)
    # 0 beat 1; 1 beat 0; 0-2 tie and 2-0 both_bad (tie) -> 1.0 each way; 1 beat 2 (vote 5,
    # b-side wins), 2 beat 1 (vote 6, b-side wins).
    expected = np.array(
        [
            [0.0, 1.0, 1.0],
            [1.0, 0.0, 1.0],
            [1.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(wins, expected)
    # Games per pair = W + W^T.
    assert (wins + wins.T)[0, 2] == 2.0


def test_both_bad_can_be_dropped():
    wins = aggregate_counts(A_IDX, B_IDX, OUTCOMES, 3, both_bad="drop")
    assert wins[0, 2] == 0.5 and wins[2, 0] == 0.5


def test_string_labels_and_integer_codes_are_equivalent():
    codes = encode_outcomes(OUTCOMES)
    np.testing.assert_array_equal(codes, [0, 0, 2, 3, 1, 1])
    np.testing.assert_array_equal(
        aggregate_counts(A_IDX, B_IDX, codes, 3), aggregate_counts(A_IDX, B_IDX, OUTCOMES, 3)
    )


def test_weights_equal_repeated_rows():
    weighted = aggregate_counts([0, 1], [1, 2], ["a", "tie"], 3, weights=[3, 2])
    repeated = aggregate_counts([0, 0, 0, 1, 1], [1, 1, 1, 2, 2], ["a"] * 3 + ["tie"] * 2, 3)
    np.testing.assert_array_equal(weighted, repeated)


def test_cells_rebuild_exactly_the_same_counts():
    rng = np.random.default_rng(3)
    v = simulate_votes([900, 1000, 1100, 1200], 5000, rng, tie_rate=0.2, both_bad_share=0.5)
    for mode in ("tie", "drop"):
        cells = aggregate_cells(v.a, v.b, v.outcomes, 4, both_bad=mode)
        np.testing.assert_array_equal(
            cells.to_wins(), aggregate_counts(v.a, v.b, v.outcomes, 4, both_bad=mode)
        )
        assert (cells.i < cells.j).all()
    cells = aggregate_cells(v.a, v.b, v.outcomes, 4)
    assert cells.total == 5000
    assert cells.i.size == 6  # all 4*3/2 pairs were compared


@pytest.mark.parametrize(
    ("a", "b", "o", "match"),
    [
        ([0], [0], ["a"], "itself"),
        ([0], [5], ["a"], "indices"),
        ([0], [1], ["win"], "unknown outcome"),
        ([0, 1], [1], ["a"], "length mismatch"),
    ],
)
def test_invalid_input_is_rejected(a, b, o, match):
    with pytest.raises(ValueError, match=match):
        aggregate_counts(a, b, o, 3)
