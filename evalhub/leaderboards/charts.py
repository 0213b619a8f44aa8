"""Plotly figures for the dashboards, built server-side and drawn by plotly.js in the page.

Each function returns a plain dict ``{"data": [...], "layout": {...}}`` (JSON-ready). The
campaign charts read a :class:`~evalhub.leaderboards.results.Leaderboard`; values computed with
random weights are labelled "uncalibrated" and drawn with open markers.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from evalhub.leaderboards.results import Leaderboard
from evalhub.leaderboards.selectors import HIGHER_IS_BETTER, METRIC_LABELS, RUN_METRICS

UNCAL = "uncalibrated"
#: Identifies this module's drawing code: figures stored with a snapshot
#: (``LeaderboardSnapshot.charts``) by another version of it are drawn again.
CHARTS_VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
# Legends sit above the plot, right of the title's line, never over the axes' labels; the axes
# grow their margins to fit their labels (long run names on a matrix stay inside its card).
_LEGEND = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1}
_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 70, "b": 60}, "template": "plotly_white",
           "font": {"size": 12}, "legend": _LEGEND}
_AXIS = {"automargin": True}


def label(text: str) -> str:
    """A user's text (run, campaign, category name) as plotly shows it: plotly reads ``<a>``,
    ``<b>``, ``<span style>`` and ``<br>`` in labels as markup, so a run name could draw
    links and styles the page's CSP refuses. Escaped, plotly shows the characters typed."""
    return html.escape(text, quote=False)


def padded_range(values: list[float], *, relative: float = 0.1, minimum: float = 1.0
                 ) -> list[float] | None:
    """An axis range around values that are all equal (one point, or one training step).

    plotly pads a zero-width range by a tiny fraction of the value, so a single point at step
    10,000 got an axis from 9.999k to 10.0005k; this returns ``[v - d, v + d]`` with
    ``d = max(relative * |v|, minimum)`` (``minimum`` when ``v`` is 0), and None (plotly's own
    range) when the values differ or there are none.
    """
    finite = [v for v in values if v is not None]
    if not finite or min(finite) != max(finite):
        return None
    value = finite[0]
    pad = max(relative * abs(value), minimum) if value else minimum
    return [value - pad, value + pad]


def _step_axis(steps: list[int]) -> dict:
    """The training-step axis: whole steps with thousands separators, every checkpoint's step
    ticked when there are few, and a sensible range around a single step."""
    axis: dict = {**_AXIS, "title": {"text": "training step"}, "tickformat": ",d"}
    distinct = sorted(set(steps))
    if 0 < len(distinct) <= 8:
        axis.update(tickmode="array", tickvals=distinct)
    if (span := padded_range([float(s) for s in distinct], relative=0.5)) is not None:
        axis["range"] = span
    return axis


def _as_dict(fig: go.Figure) -> dict:
    return json.loads(fig.to_json())


def elo_chart(board: Leaderboard, *, fit: str) -> dict:
    """Elo with its 95 % interval and online Elo per run; ``fit``: the model the ratings were
    fitted with, as the page's header names it (``text.fit_method``)."""
    runs = [r for r in board.runs if r.elo is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[label(r.name) for r in runs], y=[r.elo for r in runs], mode="markers",
        name=f"{fit}, 95% CI", marker={"size": 10, "color": "#2f5bea"},
        error_y={"type": "data", "symmetric": False,
                 "array": [r.elo_upper - r.elo for r in runs],
                 "arrayminus": [r.elo - r.elo_lower for r in runs]},
        customdata=[[r.elo_lower, r.elo_upper, r.votes, r.rank] for r in runs],
        hovertemplate="%{x}<br>Elo %{y:.0f} [%{customdata[0]:.0f}, %{customdata[1]:.0f}]"
                      "<br>rank %{customdata[3]}, %{customdata[2]} votes<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[label(r.name) for r in runs], y=[r.online_elo for r in runs], mode="markers",
        name="online Elo (live)", marker={"size": 8, "symbol": "diamond-open",
                                          "color": "#e07a10"},
        hovertemplate="%{x}<br>online Elo %{y:.0f}<extra></extra>"))
    judged = "" if board.judge_calibrated else f" - judged by {board.judge}, {UNCAL}"
    fig.update_layout(**_LAYOUT, title=f"Elo ({board.criterion}) with 95% bootstrap CI{judged}",
                      xaxis=_AXIS, yaxis={**_AXIS, "title": {"text": "Elo"}}, height=380)
    return _as_dict(fig)


def winrate_chart(board: Leaderboard, *, which: str = "observed") -> dict:
    names = board.run_names
    labels = [label(names[i]) for i in board.order]
    matrix = [list(row) for row in board.win_rates.matrix(which)]
    text = [["" if v is None else f"{100 * v:.0f}%" for v in row] for row in matrix]
    # The votes behind each observed cell (quality weights and best-of-K's implied pairs make
    # them fractional): what a rate of 100 % is worth, in the hover and the page's table.
    met = {(c.run_i, c.run_j): c.i_won + c.j_won + c.ties for c in board.pair_counts}
    votes = [[met.get((a, b), met.get((b, a))) if a != b else None for b in board.order]
             for a in board.order]
    observed = which == "observed"
    fig = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=labels, zmin=0, zmax=1, colorscale="RdBu", text=text,
        texttemplate="%{text}", hoverongaps=False, colorbar={"title": "win rate"},
        customdata=votes if observed else None,
        hovertemplate="%{y} beats %{x}: %{z:.1%}"
                      + (" of %{customdata:,.2~f} votes" if observed else "")
                      + "<extra></extra>"))
    title = "Observed win rate (row vs column)" if which == "observed" else \
        "Predicted win rate from Elo (row vs column)"
    fig.update_layout(**_LAYOUT, title=title, height=160 + 40 * len(labels),
                      xaxis={**_AXIS, "tickangle": -30},
                      yaxis={**_AXIS, "autorange": "reversed"})
    return _as_dict(fig)


def metric_scatter(board: Leaderboard) -> dict | None:
    """Elo (y: the humans', or a metric judge's when the board is judged by one) against each
    run-level metric (x), one panel per metric."""
    runs = [r for r in board.runs if r.elo is not None]
    metrics = [m for m in RUN_METRICS if any(m in r.metrics for r in runs)]
    if not metrics:
        return None
    titles = []
    for m in metrics:
        agr = board.metric_agreement.get(m)
        rho = None if agr is None else agr.spearman
        uncal = any(not r.metrics[m].calibrated for r in runs if m in r.metrics)
        arrow = "↑" if HIGHER_IS_BETTER[m] else "↓"
        titles.append(f"{METRIC_LABELS.get(m, m)} {arrow}" + (f" ({UNCAL})" if uncal else "")
                      + ("" if rho is None else f"<br>Spearman {rho:.2f}"))
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=titles, shared_yaxes=True)
    for col, m in enumerate(metrics, start=1):
        have = [r for r in runs if m in r.metrics and r.metrics[m].value is not None]
        column = board.metric_columns.get(m)
        # The reference set's name is a user's text: escaped as run names are.
        how = f"<br>{label(column.computed_with)}" if column is not None else ""
        fig.add_trace(go.Scatter(
            x=[r.metrics[m].value for r in have], y=[r.elo for r in have],
            mode="markers+text", text=[label(r.name) for r in have], textposition="top center",
            textfont={"size": 10}, cliponaxis=False,
            marker={"size": 9, "symbol": ["circle" if r.metrics[m].calibrated
                                          else "circle-open" for r in have]},
            hovertext=[f"{label(r.name)}: {METRIC_LABELS.get(m, m)} {r.metrics[m].value:.4g}"
                       + ("" if r.metrics[m].calibrated else f" ({UNCAL})")
                       + f", Elo {r.elo:.0f}{how}" for r in have],
            hoverinfo="text", showlegend=False), row=1, col=col)
    fig.update_layout(**{**_LAYOUT, "margin": {"l": 60, "r": 20, "t": 90, "b": 40}},
                      height=400, title=f"Elo of {board.rated_by} against run-level metrics "
                      "(open markers: uncalibrated)")
    fig.update_annotations(font_size=12)
    fig.update_yaxes(title_text=f"Elo ({board.rated_by})", row=1, col=1)
    return _as_dict(fig)


def category_chart(board: Leaderboard) -> dict | None:
    section = board.category_breakdown
    if not section.categories:
        return None
    categories = [label(c) for c in section.categories]
    fig = go.Figure()
    for run in board.runs:
        values = [section.ratings[c].get(run.id) for c in section.categories]
        lows = [section.lower.get(c, {}).get(run.id) for c in section.categories]
        highs = [section.upper.get(c, {}).get(run.id) for c in section.categories]
        # 95 % bootstrap interval of each category rating (no bar where the run has no votes)
        above = [None if v is None or h is None else h - v for v, h in zip(values, highs,
                                                                           strict=True)]
        below = [None if v is None or lo is None else v - lo for v, lo in zip(values, lows,
                                                                              strict=True)]
        fig.add_trace(go.Bar(name=label(run.name), x=categories, y=values,
                             error_y={"type": "data", "symmetric": False, "array": above,
                                      "arrayminus": below},
                             customdata=[[lo, hi] for lo, hi in zip(lows, highs, strict=True)],
                             # the name through meta: "%{" in a name is not a template
                             meta=[label(run.name)],
                             hovertemplate="%{meta[0]}<br>%{x}: Elo %{y:.0f} "
                                           "[%{customdata[0]:.0f}, %{customdata[1]:.0f}]"
                                           "<extra></extra>"))
    fig.update_layout(**_LAYOUT, barmode="group", height=360,
                      title="Elo by prompt category (95% CI)", xaxis=_AXIS,
                      yaxis={**_AXIS, "title": {"text": "Elo"}})
    return _as_dict(fig)


def campaign_figures(board: Leaderboard, *, fit: str) -> list[dict]:
    """The campaign page's charts of ``board`` as ``[{"id", "figure"}]`` (none without votes);
    ``fit``: the model its ratings were fitted with (``text.fit_method``).

    Drawn when the snapshot is computed and stored with it (``LeaderboardSnapshot.charts``):
    building plotly figures costs far more than reading them back."""
    if not board.votes:
        return []
    figures = [("elo", elo_chart(board, fit=fit)),
               ("winrate-observed", winrate_chart(board, which="observed")),
               ("winrate-predicted", winrate_chart(board, which="predicted")),
               ("metric-scatter", metric_scatter(board)),
               ("categories", category_chart(board))]
    return [{"id": key, "figure": figure} for key, figure in figures if figure is not None]


def checkpoint_elo_chart(series: list[dict]) -> dict | None:
    """series: [{"name": campaign, "points": [{"step", "elo", "lower", "upper", "run"}]}]."""
    if not any(s["points"] for s in series):
        return None
    fig = go.Figure()
    steps, elos = [], []
    for s in series:
        pts = sorted((p for p in s["points"] if p["step"] is not None),
                     key=lambda p: p["step"])
        if not pts:
            continue  # the page lists the campaigns without a line
        steps += [p["step"] for p in pts]
        elos += [v for p in pts for v in (p["elo"], p["lower"], p["upper"])]
        fig.add_trace(go.Scatter(
            x=[p["step"] for p in pts], y=[p["elo"] for p in pts], mode="lines+markers",
            name=label(s["name"]), legendgroup=label(s["name"]),
            error_y={"type": "data", "symmetric": False,
                     "array": [p["upper"] - p["elo"] for p in pts],
                     "arrayminus": [p["elo"] - p["lower"] for p in pts]},
            hovertext=[f"{label(p['run'])} (step {p['step']}): Elo {p['elo']:.0f} "
                       f"[{p['lower']:.0f}, {p['upper']:.0f}]" for p in pts],
            hoverinfo="text"))
    # Every line is labelled in the legend, also when there is only one (plotly hides a
    # lone trace's legend by default).
    span = padded_range(elos, relative=0.0, minimum=50.0)  # only if no point has an interval
    fig.update_layout(**_LAYOUT, height=360, showlegend=True, xaxis=_step_axis(steps),
                      yaxis={**_AXIS, "title": {"text": "Elo"},
                             **({"range": span} if span else {})},
                      title="Human Elo along training (one line per campaign)")
    return _as_dict(fig)


def checkpoint_metric_charts(points: list[dict]) -> list[dict]:
    """points: [{"step", "run", "metrics": {name: {"value", "calibrated", "computed_with"}}}];
    one per metric."""
    charts = []
    for m in RUN_METRICS:
        have = sorted((p for p in points if m in p["metrics"] and p["step"] is not None
                       and p["metrics"][m]["value"] is not None), key=lambda p: p["step"])
        if not have:
            continue
        uncal = any(not p["metrics"][m]["calibrated"] for p in have)
        name = METRIC_LABELS.get(m, m)
        fig = go.Figure(go.Scatter(
            x=[p["step"] for p in have], y=[p["metrics"][m]["value"] for p in have],
            mode="lines+markers",
            marker={"size": 9, "symbol": ["circle" if p["metrics"][m]["calibrated"]
                                          else "circle-open" for p in have]},
            hovertext=[f"{label(p['run'])} (step {p['step']}): {name} "
                       f"{p['metrics'][m]['value']:.4g}"
                       + ("" if p["metrics"][m]["calibrated"] else f" ({UNCAL})")
                       + (f"<br>{label(how)}" if (how := p["metrics"][m].get("computed_with"))
                          else "")
                       for p in have], hoverinfo="text", name=name))
        arrow = "higher is better" if HIGHER_IS_BETTER[m] else "lower is better"
        values = [p["metrics"][m]["value"] for p in have]
        span = padded_range(values, minimum=1e-3)
        fig.update_layout(**_LAYOUT, height=300, xaxis=_step_axis([p["step"] for p in have]),
                          yaxis={**_AXIS, "title": {"text": name},
                                 **({"range": span} if span else {})},
                          title=f"{name} ({arrow})" + (f" - {UNCAL}" if uncal else ""))
        charts.append({"id": f"metric-{m}", "figure": _as_dict(fig)})
    return charts
