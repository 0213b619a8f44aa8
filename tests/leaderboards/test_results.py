"""The typed leaderboard result: JSON out and back, and which stored payloads can be read."""

import dataclasses
import json
from datetime import UTC, datetime

from evalhub.leaderboards.results import (
    SCHEMA_VERSION,
    ABTest,
    ABTestError,
    CampaignInfo,
    CategorySection,
    JudgeAgreement,
    JudgePairAgreement,
    Leaderboard,
    MetricAgreement,
    MetricColumn,
    MetricValue,
    PairCount,
    PositionBiasRow,
    PositionBiasSection,
    Reversal,
    RunRow,
    WinRates,
    is_current,
)


def _run(run_id: int, name: str, elo: float | None, fid_calibrated: bool = True) -> RunRow:
    rated = elo is not None
    return RunRow(
        id=run_id, name=name, checkpoint="ckpt", checkpoint_id=run_id, model="m", model_id=1,
        training_step=None if run_id == 12 else 1000 * run_id, rank=1 if rated else None,
        rank_low=1 if rated else None, rank_high=2 if rated else None, elo=elo,
        elo_lower=None if elo is None else elo - 30, elo_upper=None if elo is None else elo + 30,
        elo_se=None if elo is None else 15.0, online_elo=elo, win_rate=0.5 if rated else None,
        votes=4.0 if rated else 0.0, wins=2.0 if rated else 0.0, losses=1.0 if rated else 0.0,
        ties=1.0 if rated else 0.0,
        metrics={"fid": MetricValue(value=12.5, std=None, calibrated=fid_calibrated,
                                    backbone="inception", label="FID", reference_set="coco",
                                    reference_set_id=4, computed_as="dim=2048")})


def _board() -> Leaderboard:
    runs = (_run(12, "a", 1010.0, fid_calibrated=False), _run(7, "b", 990.0), _run(3, "c", None))
    bias_row = PositionBiasRow(n=4, left_wins=3, left_rate=0.75, p_value=0.625, ci_low=0.19,
                               ci_high=0.99, biased=False)
    return Leaderboard(
        campaign=CampaignInfo(id=1, name="c", project=2, criteria=("overall", "alignment")),
        criterion="overall",
        filters={"judge": "human", "category": "", "min_gold_accuracy": None,
                 "since": None, "until": None},
        judge="human", judge_calibrated=True, votes=4, bootstrap_rounds=200,
        computed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        metric_judges=("clip_score",), categories_available=("colour",),
        runs=runs, order=(12, 7, 3),
        win_rates=WinRates(observed=((None, 0.5, None), (0.5, None, None), (None, None, None)),
                           predicted=((0.5, 0.5287, 0.5), (0.4713, 0.5, 0.5), (0.5, 0.5, 0.5))),
        pair_counts=(PairCount(run_i=7, run_j=12, i_won=1.0, j_won=2.0, ties=1.0),),
        metric_agreement={"fid": MetricAgreement(
            label="FID", spearman=None, spearman_p=None, kendall=None, kendall_p=None, n=2,
            higher_is_better=False, calibrated=False)},
        judge_agreement={"clip_score": JudgeAgreement(
            label="CLIP-score", calibrated=False, tasks=3, n=2, agree=1, rate=0.5, ci_low=0.0126,
            ci_high=0.9874, by_pair=(JudgePairAgreement(run_a=12, run_b=7, run_a_name="a",
                                                         run_b_name="b", n=2, agree=1,
                                                         rate=0.5),))},
        position_bias=PositionBiasSection(
            overall=bias_row,
            annotators=(dataclasses.replace(bias_row, annotator_id=5, username="ann"),),
            test="binomial"),
        category_breakdown=CategorySection(
            categories=("colour",), ratings={"colour": {12: 1010.0, 7: 990.0, 3: None}},
            votes={"colour": {12: 4.0, 7: 4.0, 3: 0.0}},
            reversals=(Reversal(category="colour", run=12, run_name="a", other=7,
                                other_name="b", gap=5.0),),
            winners={"colour": 12}, warnings={"colour": ("runs c never played",)}),
        disconnected_groups=(("a", "b"), ("c",)),
        fallback_rounds=3,
        warnings=("runs c never played",),
        metric_columns={"fid": MetricColumn(
            label="FID", reference_set="coco", reference_set_id=4, backbone="inception",
            computed_as="dim=2048", computed_with="reference set “coco” · backbone inception · "
            "2048-d features", runs=3, runs_other_way=0)},
    )


def test_a_board_survives_json_and_back_exactly():
    board = _board()
    document = json.loads(json.dumps(board.to_json(), allow_nan=False))
    assert Leaderboard.from_json(document) == board
    # The JSON keeps the field names of the API: run ids as object keys, ISO datetimes.
    assert document["category_breakdown"]["ratings"]["colour"] == {"12": 1010.0, "7": 990.0,
                                                                    "3": None}
    assert document["computed_at"] == "2026-01-02T03:04:05+00:00"
    assert document["runs"][0]["metrics"]["fid"] == {"value": 12.5, "std": None,
                                                     "calibrated": False,
                                                     "backbone": "inception", "label": "FID",
                                                     "reference_set": "coco",
                                                     "reference_set_id": 4,
                                                     "computed_as": "dim=2048"}
    assert document["metric_columns"]["fid"]["computed_with"] == (
        "reference set “coco” · backbone inception · 2048-d features")
    assert document["schema"] == SCHEMA_VERSION


def test_helpers_read_the_board():
    board = _board()
    assert board.run_names == {12: "a", 7: "b", 3: "c"}
    assert board.pair_count(12, 7) == (2.0, 1.0, 1.0)  # stored as (7, 12): swapped back
    assert board.pair_count(7, 12) == (1.0, 2.0, 1.0)
    assert board.pair_count(12, 3) == (0.0, 0.0, 0.0)
    assert board.any_uncalibrated  # run a's FID came from random weights
    assert board.runs[0].win_pct == 50.0 and board.runs[2].win_pct is None
    assert board.win_rates.matrix("predicted")[0][1] == 0.5287


def test_only_payloads_of_the_current_schema_can_be_read():
    assert is_current(_board().to_json())
    assert not is_current({"votes": 3, "runs": []})  # the untyped payload of older code
    assert not is_current({**_board().to_json(), "schema": SCHEMA_VERSION - 1})
    assert not is_current({})


def test_ab_results_serialise_with_the_api_keys():
    ok = ABTest(run_a=1, run_b=2, run_a_name="x", run_b_name="y", wins_a=1.0, wins_b=5.0,
                ties=0.0, n=6.0, p_b_better=0.94, always_valid_p=0.4, alpha=0.05,
                decision="keep_rating", message="...")
    assert ok.error is None and ABTest.from_json(ok.to_json()) == ok
    assert ABTestError(error="runs [9] are not part of this campaign").to_json() == {
        "error": "runs [9] are not part of this campaign"}
