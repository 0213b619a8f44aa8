"""Plain-text rendering of a leaderboard payload (for manage.py leaderboard)."""

from __future__ import annotations

TABLE_METRICS = (("fid", "FID"), ("kid", "KID"), ("clip_score", "CLIP"),
                 ("lpips_diversity", "LPIPS-div"))


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def metric_cell(metric: dict | None) -> tuple[str, bool]:
    """Formatted value and whether it is uncalibrated."""
    if not metric or metric.get("value") is None:
        return "-", False
    text = format(metric["value"], ".4g")
    if not metric.get("calibrated", True):
        return text + "*", True
    return text, False


def leaderboard_table(payload: dict) -> str:
    header = ["rank", "rank CI", "run", "Elo", "95% CI", "online", "win%", "votes",
              *(label for _, label in TABLE_METRICS)]
    rows, uncalibrated = [], False
    for run in payload["runs"]:
        cells = []
        for key, _ in TABLE_METRICS:
            text, unc = metric_cell(run["metrics"].get(key))
            uncalibrated = uncalibrated or unc
            cells.append(text)
        rank_ci = ("-" if run["rank_low"] is None
                   else f"{run['rank_low']}-{run['rank_high']}")
        ci = ("-" if run["elo_lower"] is None
              else f"[{run['elo_lower']:.0f}, {run['elo_upper']:.0f}]")
        win = "-" if run["win_rate"] is None else f"{100 * run['win_rate']:.1f}"
        rows.append([_fmt(run["rank"], "d"), rank_ci, run["name"], _fmt(run["elo"]), ci,
                     _fmt(run["online_elo"]), win, _fmt(run["votes"], "g"), *cells])
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    lines = [
        f"Campaign {payload['campaign']['name']} (#{payload['campaign']['id']}) - criterion "
        f"{payload['criterion']} - judge {payload['judge']} - {payload['votes']} votes - "
        f"updated {payload.get('last_updated', payload['computed_at'])}"
        + (" (stale; refresh queued)" if payload.get("stale") else ""),
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
              for row in rows]
    if uncalibrated:
        lines.append("* uncalibrated (computed with random weights)")
    for agr in payload.get("metric_agreement", {}).values():
        mark = "" if agr["calibrated"] else " (uncalibrated)"
        lines.append(f"rank agreement with {agr['label']}{mark}: Spearman "
                     f"{_fmt(agr['spearman'], '.2f')}, Kendall {_fmt(agr['kendall'], '.2f')} "
                     f"over {agr['n']} runs")
    for name, agr in payload.get("judge_agreement", {}).items():
        mark = "" if agr["calibrated"] else " (uncalibrated)"
        rate = "-" if agr["rate"] is None else f"{100 * agr['rate']:.1f}%"
        lines.append(f"metric judge {name}{mark} agrees with the human majority on {rate} of "
                     f"{agr['n']} decisive pairs")
    bias = payload.get("position_bias")
    if bias and bias["overall"]["n"]:
        o = bias["overall"]
        lines.append(f"position bias: left wins {100 * o['left_rate']:.1f}% of {o['n']} decisive "
                     f"votes (binomial p = {o['p_value']:.3g})")
    for rev in payload.get("category_breakdown", {}).get("reversals", [])[:10]:
        lines.append(f"category {rev['category']}: {rev['run_name']} is above "
                     f"{rev['other_name']} overall but {rev['gap']:.0f} Elo below it here")
    if "ab_test" in payload:
        ab = payload["ab_test"]
        lines.append("A/B: " + ab.get("message", ab.get("error", "")))
    lines += [f"warning: {w}" for w in payload.get("warnings", [])]
    return "\n".join(lines) + "\n"
