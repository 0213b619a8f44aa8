"""EvalHub rating statistics: pure numpy/scipy, no Django.

Pipeline for a campaign leaderboard::

    cells = aggregate_cells(a_idx, b_idx, outcomes, n)      # votes -> multinomial cells
    boot = bootstrap_ratings(cells, rounds=1000, seed=0)    # BT fit + percentile CIs
    ranks = rank_with_confidence(boot.lower, boot.upper)
    rank_ci = rank_intervals(boot.samples)                  # 2.5-97.5 % of each run's rank
    records = run_records(cells)                            # wins, losses, ties, win rate

K-wise votes (best of K, rankings) fit with ``fit_plackett_luce`` / ``bootstrap_plackett_luce``
(pairwise votes enter through ``rankings_from_pairs``); ``policies`` holds the pair policies
campaigns serve with.  See each module for formulas and units (ratings are Elo points,
400 / ln 10 per nat).
"""

from .agreement import (
    KrippendorffResult,
    PairAgreement,
    RankCorrelation,
    krippendorff_alpha,
    krippendorff_alpha_matrix,
    majority_outcomes,
    metric_rank_agreement,
    pair_agreement,
    rank_correlation,
    spearman_p_value,
)
from .bias import (
    CategoryBreakdown,
    PositionBias,
    category_breakdown,
    flag_position_bias,
    position_bias,
)
from .bootstrap import BootstrapResult, bootstrap_ratings
from .bradley_terry import (
    ELO_PER_NAT,
    BTBatchFit,
    BTResult,
    anchor_ratings,
    comparison_components,
    fit_bradley_terry,
    fit_bradley_terry_batch,
)
from .counts import (
    OUTCOME_A,
    OUTCOME_B,
    OUTCOME_BOTH_BAD,
    OUTCOME_TIE,
    PairCells,
    aggregate_cells,
    aggregate_counts,
    cells_to_wins,
    encode_outcomes,
)
from .elo import EloResult, elo_expected, online_elo
from .judge_pairs import PairwiseAgreement, agreement_by_pair
from .plackett_luce import (
    PLBootstrap,
    PLResult,
    Rankings,
    bootstrap_plackett_luce,
    expand_ties,
    fit_plackett_luce,
    fit_plackett_luce_batch,
    rankings_from_pairs,
)
from .policies import PairPriorities, PairVotes, serve_pairs, uniform_pairs
from .ranking import (
    RankIntervals,
    bootstrap_ranks,
    observed_win_rates,
    predicted_win_rates,
    rank_intervals,
    rank_with_confidence,
)
from .records import RunRecords, run_records
from .sequential import (
    SequentialResult,
    always_valid_p_path,
    log_e_value,
    sequential_ab_test,
)
from .simulate import SimulatedVotes, simulate_votes

__all__ = [
    "ELO_PER_NAT",
    "OUTCOME_A",
    "OUTCOME_B",
    "OUTCOME_BOTH_BAD",
    "OUTCOME_TIE",
    "BTBatchFit",
    "BTResult",
    "BootstrapResult",
    "CategoryBreakdown",
    "EloResult",
    "KrippendorffResult",
    "PLBootstrap",
    "PLResult",
    "PairAgreement",
    "PairCells",
    "PairPriorities",
    "PairVotes",
    "PairwiseAgreement",
    "PositionBias",
    "RankCorrelation",
    "RankIntervals",
    "Rankings",
    "RunRecords",
    "SequentialResult",
    "SimulatedVotes",
    "aggregate_cells",
    "aggregate_counts",
    "agreement_by_pair",
    "always_valid_p_path",
    "anchor_ratings",
    "bootstrap_plackett_luce",
    "bootstrap_ranks",
    "bootstrap_ratings",
    "category_breakdown",
    "cells_to_wins",
    "comparison_components",
    "elo_expected",
    "encode_outcomes",
    "expand_ties",
    "fit_bradley_terry",
    "fit_bradley_terry_batch",
    "fit_plackett_luce",
    "fit_plackett_luce_batch",
    "flag_position_bias",
    "krippendorff_alpha",
    "krippendorff_alpha_matrix",
    "log_e_value",
    "majority_outcomes",
    "metric_rank_agreement",
    "observed_win_rates",
    "online_elo",
    "pair_agreement",
    "position_bias",
    "predicted_win_rates",
    "rank_correlation",
    "rank_intervals",
    "rank_with_confidence",
    "rankings_from_pairs",
    "run_records",
    "sequential_ab_test",
    "serve_pairs",
    "simulate_votes",
    "spearman_p_value",
    "uniform_pairs",
]
