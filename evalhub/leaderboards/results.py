"""The typed result of :func:`evalhub.leaderboards.selectors.leaderboard_compute`.

A :class:`Leaderboard` is a tree of frozen dataclasses. Numbers are already rounded for display
(Elo points to 0.1, rates and correlations to 1e-4, p-values to 1e-6) and undefined values
(NaN, no games) are ``None``, so :meth:`Leaderboard.to_json` is a plain structural conversion
and ``Leaderboard.from_json(board.to_json()) == board``.

Snapshots store ``to_json()`` with a ``schema`` number; :func:`is_current` tells whether a stored
payload can be read back (older payloads are recomputed, see
:func:`evalhub.leaderboards.services.leaderboard_get`). No Django here.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

__all__ = [
    "SCHEMA_VERSION",
    "ABTest",
    "ABTestError",
    "CampaignInfo",
    "CategorySection",
    "JudgeAgreement",
    "JudgePairAgreement",
    "Leaderboard",
    "MetricAgreement",
    "MetricColumn",
    "MetricValue",
    "PairCount",
    "PooledCampaign",
    "PositionBiasRow",
    "PositionBiasSection",
    "Reversal",
    "RunRow",
    "WinRates",
    "is_current",
    "json_schema",
]

#: Bump when a field is added, removed or changes meaning: stored snapshots with another
#: number are recomputed instead of being read. 1 = the untyped dict payload (no "schema").
SCHEMA_VERSION = 6  # 3: category_breakdown.lower / .upper; 4: comparable run metrics only;
# 5: how run metrics were computed (metric values' reference set and computed_as, metric_columns)
# 6: pooled campaigns (``pooled``)

JSONDict = dict[str, Any]


def is_current(payload: JSONDict) -> bool:
    """Whether a stored payload was written by this version of :class:`Leaderboard`."""
    return isinstance(payload, dict) and payload.get("schema") == SCHEMA_VERSION


# --- JSON conversion -------------------------------------------------------------------------


Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _optional(convert: Convert) -> Convert:
    return _same if convert is _same else (lambda v: None if v is None else convert(v))


def _union_member(tp: Any) -> Any:
    """The one non-None member of ``X | None`` (None for wider unions: passed through)."""
    options = [a for a in get_args(tp) if a is not type(None)]
    return options[0] if len(options) == 1 else None


# Converters are compiled once per annotation (a closure tree) rather than interpreting the
# type hints for every value: a 50-run board has ~10,000 values, mostly in the win-rate
# matrices.


@cache
def _encoder(tp: Any) -> Convert:
    """Dataclass -> dict, tuple -> list, dict keys -> str (run ids "12"), datetime -> ISO."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        member = _union_member(tp)
        return _same if member is None else _optional(_encoder(member))
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        fields = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(tp)]
        return lambda v: {name: enc(getattr(v, name)) for name, enc in fields}
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        if len(set(args)) > 1:  # a fixed-length tuple of different types
            items = [_encoder(a) for a in args]
            return lambda v: [enc(x) for enc, x in zip(items, v, strict=True)]
        item = _encoder(args[0])
        return list if item is _same else (lambda v: [item(x) for x in v])
    if origin is dict:
        value = _encoder(get_args(tp)[1])
        return lambda v: {str(k): value(x) for k, x in v.items()}
    if tp is datetime:
        return lambda v: v.isoformat()
    return _same


@cache
def _decoder(tp: Any) -> Convert:
    """The inverse of :func:`_encoder` for annotation ``tp``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        member = _union_member(tp)
        return _same if member is None else _optional(_decoder(member))
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(tp) if f.init]
        return lambda v: tp(**{name: dec(v[name]) for name, dec in fields if name in v})
    if origin is tuple:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        if len(args) == 1:
            item = _decoder(args[0])
            return tuple if item is _same else (lambda v: tuple(item(x) for x in v))
        items = [_decoder(a) for a in args]
        return lambda v: tuple(dec(x) for dec, x in zip(items, v, strict=True))
    if origin is list:
        item = _decoder(get_args(tp)[0])
        return list if item is _same else (lambda v: [item(x) for x in v])
    if origin is dict:
        key, value = (_decoder(a) for a in get_args(tp))
        return lambda v: {key(k): value(x) for k, x in v.items()}
    if tp is datetime:
        return datetime.fromisoformat
    if tp is int:
        return int  # run ids used as object keys come back as strings
    # float needs no conversion: JSON writes a Python float with a decimal point ("5.0"), so it
    # parses back as a float; leaving it alone keeps the win-rate matrices plain tuple() calls.
    return _same


_SCHEMA_TYPES: dict[Any, JSONDict] = {
    bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
    str: {"type": "string"}, datetime: {"type": "string", "format": "date-time"},
}


def json_schema(tp: Any) -> JSONDict:
    """The OpenAPI 3.0 schema of what :func:`_encoder` writes for annotation ``tp``: read from
    the same annotations, so the API's documented leaderboard is the one it sends."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        member = _union_member(tp)
        return {} if member is None else {**json_schema(member), "nullable": True}
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        properties = {f.name: json_schema(hints[f.name]) for f in dataclasses.fields(tp)}
        return {"type": "object", "properties": properties, "required": list(properties)}
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        if len(set(args)) > 1:  # a fixed-length tuple of different types
            return {"type": "array", "items": {"oneOf": [json_schema(a) for a in args]},
                    "minItems": len(args), "maxItems": len(args)}
        return {"type": "array", "items": json_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(get_args(tp)[1])}
    if origin is Literal:
        return {"type": "string", "enum": list(get_args(tp))}
    return dict(_SCHEMA_TYPES.get(tp, {}))


class _JSONMixin:
    """``to_json`` / ``from_json`` for the frozen dataclasses below."""

    def to_json(self) -> JSONDict:
        """A dict of str, int, float, bool, None, lists and dicts (no NaN)."""
        return _encoder(type(self))(self)

    @classmethod
    def from_json(cls, data: JSONDict) -> Any:
        """The inverse of :meth:`to_json`."""
        return _decoder(cls)(data)


# --- the pieces --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignInfo(_JSONMixin):
    id: int
    name: str
    project: int
    criteria: tuple[str, ...]


@dataclass(frozen=True)
class PooledCampaign(_JSONMixin):
    """Another campaign of the project whose votes the leaderboard pools (the ``pool`` filter).

    ``votes``: its votes counted (each best-of-K ranking and each pair vote is one; weighted
    under ``quality=weight``), those on runs outside the leaderboard's campaign left out.
    """

    id: int
    name: str
    task_kind: str
    k: int | None
    votes: float


@dataclass(frozen=True)
class MetricValue(_JSONMixin):
    """A run-level metric (FID, KID, CLIP-score, ...) shown next to a run.

    ``calibrated`` is False when the value was computed with random weights: every page and
    export that shows the value labels it "uncalibrated". ``reference_set`` (its name),
    ``reference_set_id``, ``backbone`` and ``computed_as`` say how it was computed: the same
    for every value of one metric on a board (:attr:`Leaderboard.metric_columns`).
    """

    value: float | None
    std: float | None
    calibrated: bool
    backbone: str
    label: str
    reference_set: str | None = None
    reference_set_id: int | None = None
    computed_as: str = ""


@dataclass(frozen=True)
class MetricColumn(_JSONMixin):
    """How a board's values of one run-level metric were computed: the way most of its runs
    share (``evaluation.selectors.run_metric_table``). ``computed_with`` says it in words;
    ``runs`` have a value computed this way, ``runs_other_way`` only values computed otherwise
    (they show none for this metric)."""

    label: str
    reference_set: str | None
    reference_set_id: int | None
    backbone: str
    computed_as: str
    computed_with: str
    runs: int
    runs_other_way: int


@dataclass(frozen=True)
class RunRow(_JSONMixin):
    """One run of the ranking. Rating fields are None for a run without votes.

    ``elo``, ``elo_lower``, ``elo_upper`` (95 % bootstrap interval), ``elo_se`` (bootstrap
    standard error) and ``online_elo`` are Elo points; ``rank`` is the conservative rank of
    :func:`ratings.rank_with_confidence`, ``rank_low``-``rank_high`` the 2.5-97.5 % interval of
    the run's rank over bootstrap rounds; ``win_rate`` is a fraction (ties count half);
    ``votes``, ``wins``, ``losses``, ``ties`` are vote counts.
    """

    id: int
    name: str
    checkpoint: str
    checkpoint_id: int
    model: str
    model_id: int
    training_step: int | None
    rank: int | None
    rank_low: int | None
    rank_high: int | None
    elo: float | None
    elo_lower: float | None
    elo_upper: float | None
    elo_se: float | None
    online_elo: float | None
    win_rate: float | None
    votes: float
    wins: float
    losses: float
    ties: float
    metrics: dict[str, MetricValue]

    @property
    def win_pct(self) -> float | None:
        """``win_rate`` in percent."""
        return None if self.win_rate is None else 100.0 * self.win_rate


@dataclass(frozen=True)
class WinRates(_JSONMixin):
    """Row-vs-column win rates (fractions), rows and columns in :attr:`Leaderboard.order`.

    ``observed`` is None where two runs never met (and on the diagonal); ``predicted`` comes
    from the Elo ratings, :math:`1 / (1 + 10^{(r_j - r_i)/400})`.
    """

    observed: tuple[tuple[float | None, ...], ...] = ()
    predicted: tuple[tuple[float | None, ...], ...] = ()

    def matrix(self, which: str) -> tuple[tuple[float | None, ...], ...]:
        """``observed`` or ``predicted`` by name."""
        if which not in ("observed", "predicted"):
            raise ValueError(f"no win-rate matrix {which!r}")
        return getattr(self, which)


@dataclass(frozen=True)
class PairCount(_JSONMixin):
    """Head-to-head votes of runs ``run_i`` and ``run_j`` (ids); ties include both_bad."""

    run_i: int
    run_j: int
    i_won: float
    j_won: float
    ties: float


@dataclass(frozen=True)
class MetricAgreement(_JSONMixin):
    """Rank agreement of a run-level metric with the board's ranking (the humans', or the metric
    judge's; positive = agrees)."""

    label: str
    spearman: float | None
    spearman_p: float | None
    kendall: float | None
    kendall_p: float | None
    n: int
    higher_is_better: bool
    calibrated: bool


@dataclass(frozen=True)
class JudgePairAgreement(_JSONMixin):
    """A metric judge against the human majority on the decisive tasks of one pair of runs."""

    run_a: int
    run_b: int
    run_a_name: str
    run_b_name: str
    n: int
    agree: int
    rate: float | None


@dataclass(frozen=True)
class JudgeAgreement(_JSONMixin):
    """A metric judge against the human majority: share of decisive tasks where it agrees
    (``rate``, a fraction) with its exact 95 % interval, and per pair of runs, worst first."""

    label: str
    calibrated: bool
    tasks: int
    n: int
    agree: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    by_pair: tuple[JudgePairAgreement, ...]


@dataclass(frozen=True)
class PositionBiasRow(_JSONMixin):
    """Left-shown image's win rate among decisive human votes, overall or of one annotator.

    ``left_rate``, ``ci_low``, ``ci_high`` are fractions (exact 95 % interval); ``p_value`` is
    the exact two-sided binomial test of ``left_rate = 0.5``.
    """

    n: int
    left_wins: int
    left_rate: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    biased: bool
    annotator_id: int | None = None
    username: str | None = None


@dataclass(frozen=True)
class PositionBiasSection(_JSONMixin):
    overall: PositionBiasRow
    annotators: tuple[PositionBiasRow, ...]
    test: str


@dataclass(frozen=True)
class Reversal(_JSONMixin):
    """``run`` is rated above ``other`` overall but ``gap`` Elo points below it in ``category``."""

    category: str
    run: int
    run_name: str
    other: int
    other_name: str
    gap: float | None


@dataclass(frozen=True)
class CategorySection(_JSONMixin):
    """Bradley-Terry per prompt category.

    ``ratings`` and ``votes`` map category -> run id -> Elo points / votes (rating None for a
    run without votes in that category); ``lower`` and ``upper`` the 95 % bootstrap interval
    of each category rating (Elo points, at most ``CATEGORY_BOOTSTRAP_ROUNDS`` rounds);
    ``winners`` maps category -> best run id;
    ``reversals`` are sorted by gap, largest first.
    """

    categories: tuple[str, ...] = ()
    ratings: dict[str, dict[int, float | None]] = dataclasses.field(default_factory=dict)
    votes: dict[str, dict[int, float | None]] = dataclasses.field(default_factory=dict)
    lower: dict[str, dict[int, float | None]] = dataclasses.field(default_factory=dict)
    upper: dict[str, dict[int, float | None]] = dataclasses.field(default_factory=dict)
    reversals: tuple[Reversal, ...] = ()
    winners: dict[str, int] = dataclasses.field(default_factory=dict)
    warnings: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Leaderboard(_JSONMixin):
    """The leaderboard of one campaign and criterion under one filter combination.

    ``runs`` are in ranking order (``order`` holds their ids; runs without votes last);
    ``judge_calibrated`` is False when the judge is a metric scored with random weights;
    ``metric_columns`` says how each run-level metric's values were computed; ``pooled`` names
    the other campaigns whose votes it counts (``votes`` is the total over all of them);
    ``filters`` echoes :meth:`LeaderboardFilters.as_dict`. See docs/leaderboards.md.
    """

    campaign: CampaignInfo
    criterion: str
    filters: dict[str, Any]
    judge: str
    judge_calibrated: bool
    votes: int
    bootstrap_rounds: int
    computed_at: datetime
    metric_judges: tuple[str, ...]
    categories_available: tuple[str, ...]
    runs: tuple[RunRow, ...]
    order: tuple[int, ...]
    win_rates: WinRates
    pair_counts: tuple[PairCount, ...]
    metric_agreement: dict[str, MetricAgreement]
    judge_agreement: dict[str, JudgeAgreement]
    position_bias: PositionBiasSection | None
    category_breakdown: CategorySection
    disconnected_groups: tuple[tuple[str, ...], ...]
    fallback_rounds: int
    warnings: tuple[str, ...]
    metric_columns: dict[str, MetricColumn] = dataclasses.field(default_factory=dict)
    pooled: tuple[PooledCampaign, ...] = ()
    schema: int = SCHEMA_VERSION

    @property
    def run_names(self) -> dict[int, str]:
        """Run id -> run name."""
        return {r.id: r.name for r in self.runs}

    def pair_count(self, run_a: int, run_b: int) -> tuple[float, float, float]:
        """(wins of ``run_a``, wins of ``run_b``, ties) in their head-to-head votes."""
        for cell in self.pair_counts:
            if (cell.run_i, cell.run_j) == (run_a, run_b):
                return cell.i_won, cell.j_won, cell.ties
            if (cell.run_i, cell.run_j) == (run_b, run_a):
                return cell.j_won, cell.i_won, cell.ties
        return 0.0, 0.0, 0.0

    @property
    def rated_by(self) -> str:
        """Whose judgments the Elo column fits, in words: "people", or "metric judge
        clip_score" (with "(uncalibrated)" when it was scored with random weights). What the
        page and its charts call the ranking the metrics are compared with."""
        if not self.judge.startswith("metric:"):
            return "people"
        return (f"metric judge {self.judge.removeprefix('metric:')}"
                + ("" if self.judge_calibrated else " (uncalibrated)"))

    @property
    def any_uncalibrated(self) -> bool:
        """Whether any number shown rests on random weights (run metrics or the judge)."""
        return (not self.judge_calibrated
                or any(not m.calibrated for r in self.runs for m in r.metrics.values()))


@dataclass(frozen=True)
class ABTest(_JSONMixin):
    """Anytime-valid sequential test of run B against run A on their head-to-head votes.

    ``p_b_better`` is the posterior probability that B wins more than half its votes against
    A (Beta(1, 1) prior); ``always_valid_p`` stays valid however often it is looked at;
    ``decision`` is ``b_better``, ``a_better`` or ``keep_rating``. Ties count half each way.
    """

    run_a: int
    run_b: int
    run_a_name: str
    run_b_name: str
    wins_a: float
    wins_b: float
    ties: float
    n: float | None
    p_b_better: float | None
    always_valid_p: float | None
    alpha: float
    decision: Literal["b_better", "a_better", "keep_rating"]
    message: str

    @property
    def error(self) -> None:
        """No error (see :class:`ABTestError`); lets templates test ``ab.error`` on both."""
        return None


@dataclass(frozen=True)
class ABTestError(_JSONMixin):
    """The A/B test could not run (e.g. a run is not part of the campaign)."""

    error: str
