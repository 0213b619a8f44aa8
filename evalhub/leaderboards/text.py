"""Text rendering of a leaderboard: the ranking table's cells (pages) and the plain-text table
(``manage.py leaderboard``). Uncalibrated metric values (random weights) are always marked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.campaigns.models import TaskKind
from evalhub.core.text import counted, display_width, pad, terminal_text
from evalhub.leaderboards.results import (
    ABTest,
    ABTestError,
    Leaderboard,
    MetricValue,
    PooledCampaign,
    RunRow,
)

#: Columns of the ranking tables: the image metrics always, each video metric when a run of the
#: leaderboard has a value for it (a video campaign's runs), so an image campaign's table is
#: unchanged and a video campaign's shows its runs' video metrics beside the ratings.
TABLE_METRICS = (("fid", "FID"), ("kid", "KID"), ("clip_score", "CLIP"),
                 ("lpips_diversity", "LPIPS-div"))
#: Shown when a run of the board has them: CMMD (the reference-set metric fewer jobs compute)
#: and the video metrics.
PRESENT_TABLE_METRICS = (("cmmd", "CMMD"),)
VIDEO_TABLE_METRICS = (("video_clip_score", "CLIP (frames)"),
                       ("temporal_consistency", "Temporal cons."), ("flicker", "Flicker"),
                       ("fvd", "FVD"))
UNCALIBRATED_NOTE = "* uncalibrated (computed with random weights)"
RANK_DEFINITION = (
    "Rank: 1 + the number of runs whose whole 95% Elo interval lies above this run's (runs "
    "whose intervals overlap share a rank). Possible ranks: from that rank to the number of "
    "rated runs minus those whose whole interval lies below this run's.")


def _kinds(task_kind: str, k: int | None, pooled: Sequence[PooledCampaign]
           ) -> list[tuple[str, int | None]]:
    """The task kinds whose votes a leaderboard fits: its campaign's, and those of the pooled
    campaigns that gave it votes."""
    return [(task_kind, k), *((p.task_kind, p.k) for p in pooled if p.votes)]


def fit_method(*, task_kind: str, k: int | None, pooled: Sequence[PooledCampaign] = ()) -> str:
    """The model a leaderboard's Elo ratings are fitted with, as every page names it (the
    leaderboard's header, its Elo chart's legend): Plackett-Luce when best-of-K rankings are
    among its votes (its campaign's or a pooled campaign's: the rankings and any pair votes in
    one fit, docs/leaderboards.md, "K-wise votes"), else Bradley-Terry. ``task_kind``, ``k``:
    the campaign's; ``pooled``: the board's pooled campaigns."""
    kinds = _kinds(task_kind, k, pooled)
    sizes = sorted({size for kind, size in kinds if kind == TaskKind.BEST_OF_K})
    if not sizes:
        return "Bradley-Terry Elo"
    what = ", ".join(f"best-of-{size}" for size in sizes) + " rankings"
    if any(kind == TaskKind.PAIR for kind, _ in kinds):
        what += " and pair votes"
    return f"Plackett-Luce Elo ({what})"


def pooled_summary(pooled: PooledCampaign) -> str:
    """A pooled campaign as the page and the command name it: "edits-best4 (best of 4, 40
    votes)"."""
    kind = f"best of {pooled.k}" if pooled.task_kind == TaskKind.BEST_OF_K else "pairs"
    return f"{pooled.name} ({kind}, {counted(_amount(pooled.votes), 'vote')})"


#: The A/B form's words for a pick it cannot test (the API and the command keep
#: ``filters.parse_ab``'s words about the ``ab`` parameter).
AB_SAME_RUN = "Pick two different runs."
AB_NOT_A_RUN = "Pick two runs of this leaderboard."


def _amount(value: float) -> int | float:
    """A vote count as the pages write it: a whole number without decimals; a weighted count
    (the "weight" quality mode, or a tie's half) rounded to 2 decimals."""
    rounded = round(float(value), 2)
    return int(rounded) if rounded.is_integer() else rounded


def ab_detail(ab: ABTest) -> str:
    """What an A/B verdict rests on, B first as the verdict reads: "1 win for b, 2 wins for a,
    1 tie; anytime-valid, ..." (one plural rule: ``core.text.counted``)."""
    return (f"{counted(_amount(ab.wins_b), 'win')} for {ab.run_b_name}, "
            f"{counted(_amount(ab.wins_a), 'win')} for {ab.run_a_name}, "
            f"{counted(_amount(ab.ties), 'tie')}; "
            "anytime-valid, so you may check after every vote")


@dataclass(frozen=True)
class CountColumn:
    """The ranking table's per-run count column: its heading and the heading's tooltip."""

    label: str
    title: str


def run_count_column(*, task_kind: str, pooled: Sequence[PooledCampaign] = ()
                     ) -> CountColumn:
    """What the ranking's per-run count counts. A pair campaign counts votes. A best-of-K
    campaign counts the pairs its rankings state (each pick over every run still on offer:
    K-1 per pick of the best, K(K-1)/2 per full ranking; docs/leaderboards.md, "K-wise
    votes"), so a run's count exceeds the header's number of votes and is labelled "Pairs".
    A pair campaign that pools a best-of-K campaign's votes counts as one."""
    if any(kind == TaskKind.BEST_OF_K for kind, _ in _kinds(task_kind, None, pooled)):
        return CountColumn(
            label="Pairs",
            title="Comparisons implied by the picks: K-1 per pick, K(K-1)/2 per full ranking "
                  "(each pick beats every run still on offer), plus any pair votes")
    return CountColumn(label="Votes", title="Votes this run took part in")


def possible_ranks(board: Leaderboard) -> dict[int, tuple[int, int]]:
    """Each rated run's ranks that its 95 % Elo interval allows, by run id.

    With rated runs :math:`R` and intervals :math:`[l_j, u_j]`,

    .. math:: \\mathrm{best}_i = 1 + \\#\\{j \\in R : l_j > u_i\\}, \\qquad
              \\mathrm{worst}_i = |R| - \\#\\{j \\in R : u_j < l_i\\}

    ``best`` is the run's ``rank`` (:func:`ratings.rank_with_confidence`), so a rank always
    lies inside its own range: one definition for the column and its interval. (The API's
    ``rank_low``/``rank_high`` are the bootstrap percentiles of the per-round rank, another
    quantity; the tables show this one.)
    """
    rated = [r for r in board.runs if r.elo_lower is not None and r.elo_upper is not None]
    ranges = {}
    for run in rated:
        best = 1 + sum(other.elo_lower > run.elo_upper for other in rated)
        worst = len(rated) - sum(other.elo_upper < run.elo_lower for other in rated)
        ranges[run.id] = (best, worst)
    return ranges


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def metric_cell(value: float | None, calibrated: bool = True) -> tuple[str, bool]:
    """Formatted value (4 significant digits, ``*`` when uncalibrated) and whether it is
    uncalibrated; ``"-"`` for no value."""
    if value is None:
        return "-", False
    text = format(value, ".4g")
    if not calibrated:
        return text + "*", True
    return text, False


def _metric_cell(metric: MetricValue | None) -> tuple[str, bool]:
    return metric_cell(None) if metric is None else metric_cell(metric.value, metric.calibrated)


def metric_column_note(label: str, computed_with: str, runs_other_way: int) -> str:
    """The line said under a table of runs about one metric's column: how its values were
    computed (``computed_with``, from ``evaluation.models.computed_with``) and how many runs
    show none because theirs were computed only another way."""
    note = f"{label}: {computed_with}"
    if runs_other_way:
        runs = "1 run has" if runs_other_way == 1 else f"{runs_other_way} runs have"
        note += f" ({runs} {label} computed only another way: not shown)"
    return note


@dataclass(frozen=True)
class MetricHeader:
    """A metric column of a ranking table; ``note`` says how its values were computed (empty
    when no run of the board has one)."""

    key: str
    label: str
    note: str


def metric_headers(board: Leaderboard) -> tuple[MetricHeader, ...]:
    """The metric columns of ``board``'s ranking table (:func:`table_metrics`) with their
    notes (:func:`metric_column_note`)."""
    columns = board.metric_columns
    return tuple(
        MetricHeader(key=key, label=label, note=metric_column_note(
            label, column.computed_with, column.runs_other_way)
            if (column := columns.get(key)) is not None else "")
        for key, label in table_metrics(board))


@dataclass(frozen=True)
class MetricCell:
    text: str  # without the "*": pages show an "uncalibrated" label instead
    uncalibrated: bool
    label: str
    computed_with: str = ""  # how the value was computed (empty for no value)


@dataclass(frozen=True)
class RankingRow:
    """One row of the dashboard's ranking table: the run and its metric cells."""

    run: RunRow
    metric_cells: tuple[MetricCell, ...]
    rank_range: tuple[int, int] | None = None  # possible_ranks(): best, worst


def table_metrics(board: Leaderboard) -> tuple[tuple[str, str], ...]:
    """The (metric, column label) pairs of ``board``'s ranking table (see TABLE_METRICS)."""
    present = {name for run in board.runs for name in run.metrics}
    return TABLE_METRICS + tuple(item for item in PRESENT_TABLE_METRICS + VIDEO_TABLE_METRICS
                                 if item[0] in present)


def ranking_rows(board: Leaderboard) -> tuple[list[RankingRow], bool]:
    """Rows of the ranking table (columns: :func:`table_metrics`) and whether any metric value
    in it is uncalibrated."""
    rows, any_uncal = [], False
    ranges = possible_ranks(board)
    columns = table_metrics(board)
    for run in board.runs:
        cells = []
        for key, label in columns:
            value = run.metrics.get(key)
            text, uncal = _metric_cell(value)
            any_uncal = any_uncal or uncal
            column = board.metric_columns.get(key) if value is not None else None
            cells.append(MetricCell(text=text.rstrip("*"), uncalibrated=uncal, label=label,
                                    computed_with=column.computed_with if column else ""))
        rows.append(RankingRow(run=run, metric_cells=tuple(cells), rank_range=ranges.get(run.id)))
    return rows, any_uncal


def leaderboard_table(board: Leaderboard, *, last_updated: str | None = None,
                      stale: bool = False, ab: ABTest | ABTestError | None = None,
                      count_column: CountColumn | None = None, fit: str = "") -> str:
    """The leaderboard as a fixed-width table with agreement, bias and warning lines.
    ``count_column`` (``run_count_column``) heads the per-run counts ("votes" without it);
    ``fit`` (``fit_method``) is named in the first line when given."""
    columns = table_metrics(board)
    count = "votes" if count_column is None else count_column.label.lower()
    header = ["rank", "possible", "run", "Elo", "95% CI", "online", "win%", count,
              *(label for _, label in columns)]
    rows, uncalibrated = [], False
    ranges = possible_ranks(board)
    for run in board.runs:
        cells = []
        for key, _ in columns:
            text, unc = _metric_cell(run.metrics.get(key))
            uncalibrated = uncalibrated or unc
            cells.append(text)
        span = ranges.get(run.id)
        rank_ci = "-" if span is None else f"{span[0]}-{span[1]}"
        ci = "-" if run.elo_lower is None else f"[{run.elo_lower:.0f}, {run.elo_upper:.0f}]"
        win = "-" if run.win_pct is None else f"{run.win_pct:.1f}"
        rows.append([_fmt(run.rank, "d"), rank_ci, terminal_text(run.name), _fmt(run.elo), ci,
                     _fmt(run.online_elo), win, _fmt(run.votes, "g"), *cells])
    widths = [max(display_width(str(r[k])) for r in [header, *rows])
              for k in range(len(header))]
    judge = board.judge + ("" if board.judge_calibrated else " (uncalibrated)")
    lines = [
        f"Campaign {board.campaign.name} (#{board.campaign.id}) - criterion "
        f"{board.criterion} - judge {judge} - {counted(board.votes, 'vote')} - "
        + (f"{fit} - " if fit else "")
        + f"updated {last_updated or board.computed_at.isoformat()}"
        + (" (stale; refresh queued)" if stale else ""),
        *(f"pooled with campaign #{p.id} {pooled_summary(p)}" for p in board.pooled),
        "  ".join(pad(h, w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(pad(str(c), w) for c, w in zip(row, widths, strict=True))
              for row in rows]
    lines.append(RANK_DEFINITION)
    lines += [f"metric column {header.note}" for header in metric_headers(board) if header.note]
    if uncalibrated:
        lines.append(UNCALIBRATED_NOTE)
    for agr in board.metric_agreement.values():
        mark = "" if agr.calibrated else " (uncalibrated)"
        lines.append(f"rank agreement with {agr.label}{mark}: Spearman "
                     f"{_fmt(agr.spearman, '.2f')}, Kendall {_fmt(agr.kendall, '.2f')} "
                     f"over {agr.n} runs")
    for name, judge_agr in board.judge_agreement.items():
        mark = "" if judge_agr.calibrated else " (uncalibrated)"
        rate = "-" if judge_agr.rate is None else f"{100 * judge_agr.rate:.1f}%"
        lines.append(f"metric judge {name}{mark} agrees with the human majority on {rate} of "
                     f"{judge_agr.n} decisive pairs")
    bias = board.position_bias
    if bias is not None and bias.overall.n:
        o = bias.overall
        lines.append(f"position bias: left wins {100 * o.left_rate:.1f}% of {o.n} decisive "
                     f"votes (binomial p = {o.p_value:.3g})")
    for rev in board.category_breakdown.reversals[:10]:
        lines.append(f"category {rev.category}: {rev.run_name} is above "
                     f"{rev.other_name} overall but {rev.gap:.0f} Elo below it here")
    if ab is not None:
        lines.append("A/B: " + (ab.error if isinstance(ab, ABTestError) else ab.message))
    lines += [f"warning: {w}" for w in board.warnings]
    # Names in every line (campaign, runs, categories) printed safe for a terminal.
    return "\n".join(terminal_text(line) for line in lines) + "\n"
