"""The README.md dataset card written into every bundle (and with ``--card``)."""

from __future__ import annotations

import json
import re
import statistics
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from evalhub.campaigns.models import Campaign, TaskKind
from evalhub.campaigns.quality.annotators import (
    excluded_annotator_ids,
    gold_accuracy_by_annotator,
)
from evalhub.exports.options import DATA_FILE_NAMES, ExportOptions

if TYPE_CHECKING:
    from evalhub.exports.services import ExportSummary

CARD_MARKER = "<!-- evalhub-export-card -->"
GOLD_BUCKETS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0001))
# Line breaks of every kind (str.splitlines) and tabs: one space each.
_BREAKS = re.compile(r"\r\n|[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]")
# The ASCII punctuation that means something in CommonMark or GitHub Markdown (emphasis,
# code, links, headings, lists, tables, HTML, entities, strikethrough): each escaped.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~&])")


def gold_accuracy_summary(*, campaign: Campaign, threshold: float | None) -> dict:
    """Distribution of annotators' gold accuracy (overall criterion, undone votes left out).

    ``buckets`` maps "[lo, hi)" to a count of annotators (the last bucket includes 1.0).
    """
    gold = gold_accuracy_by_annotator(campaign=campaign)
    accuracies = sorted(s.accuracy for s in gold.values() if s.accuracy is not None)
    buckets = {}
    for lo, hi in GOLD_BUCKETS:
        label = f"[{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'}"
        buckets[label] = sum(lo <= a < hi for a in accuracies)
    return {
        "annotators_with_gold": len(accuracies),
        "min": accuracies[0] if accuracies else None,
        "median": statistics.median(accuracies) if accuracies else None,
        "max": accuracies[-1] if accuracies else None,
        "buckets": buckets,
        "below_threshold": (sum(a < threshold for a in accuracies)
                            if threshold is not None else None),
        "excluded": len(excluded_annotator_ids(campaign=campaign)),
    }


def markdown_text(value: object) -> str:
    """User-written text (a campaign, project, run or model name, a criterion) as Markdown that
    shows it literally: on one line (a newline would start a heading or a list item of its own,
    a table row end), each Markdown punctuation character backslash-escaped (CommonMark: any
    ASCII punctuation may be), every other character as it is (no repr() escapes: an emoji or
    an Arabic name is printed, not written as ``\\u200d``). Every user string the card prints
    goes through here."""
    return _MARKDOWN.sub(r"\\\1", _BREAKS.sub(" ", str(value)))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _uncalibrated_warning(summary: ExportSummary) -> str:
    """What the rows flagged ``uncalibrated`` are, for a card that has some."""
    return (f"**{summary.uncalibrated} of the {summary.rows} rows are uncalibrated** "
            "(`uncalibrated: true`): metric judgments whose per-image scores came from random "
            "weights (backbones randomly initialised, `EVALHUB_RANDOM_WEIGHTS=1`, because the "
            "real weights were not installed). Their outcomes are not comparable with "
            "published numbers and say nothing about quality: filter them out before "
            "training.")


def dataset_card(*, campaign: Campaign, options: ExportOptions, summary: ExportSummary) -> str:
    """Markdown: files, counts, agreement, annotator quality and the filters used."""
    from evalhub.campaigns.quality.agreement import agreement_by_criterion  # numpy/scipy: load late

    agreement = agreement_by_criterion(campaign=campaign)
    gold = gold_accuracy_summary(campaign=campaign, threshold=options.min_gold_accuracy)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    lines = [
        CARD_MARKER,
        f"# Preference data: {markdown_text(campaign.name)}",
        "",
        f"Exported by EvalHub on {now} from campaign {campaign.pk} "
        f"(“{markdown_text(campaign.name)}”) of project “{markdown_text(campaign.project.slug)}”. "
        f"Format `{options.format}`, one row per {options.aggregate}. Column reference: "
        "docs/exports.md.",
        "",
        "## Files",
        "",
        f"- `{DATA_FILE_NAMES[options.format]}`: {summary.rows} rows",
    ]
    if options.bundle:
        if summary.images:  # the folders the bundle holds (a video DPO bundle: no images/)
            lines.append(f"- `images/`: {summary.images} images named by the sha256 of their "
                         "bytes")
        if summary.videos:
            lines.append(f"- `videos/`: {summary.videos} video files (as imported or generated) "
                         "named by the sha256 of their bytes")
    lines.append("- `README.md`: this card")
    lines += [
        "",
        "## Counts",
        "",
        f"- rows: {summary.rows}",
        f"- votes behind the rows: {summary.votes}",
        f"- annotators: {summary.annotators}",
        f"- uncalibrated rows: {summary.uncalibrated} of {summary.rows}",
        "",
        "| criterion | rows | a | b | tie | both_bad |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for criterion in sorted({c for c, _ in summary.outcomes}):
        counts = [summary.outcomes.get((criterion, o), 0) for o in ("a", "b", "tie", "both_bad")]
        lines.append(f"| {markdown_text(criterion)} | {sum(counts)} | "
                     + " | ".join(map(str, counts)) + " |")
    if summary.rows == 0:
        lines += ["", f"**{summary.message}**"]
    if summary.uncalibrated:
        lines += ["", _uncalibrated_warning(summary)]
    lines += [
        "",
        "## Agreement between annotators",
        "",
        "Krippendorff's alpha (nominal) per criterion over every non-gold human vote of the "
        "campaign (excluded annotators left out; not limited by this export's filters).",
        "",
        "| criterion | alpha | pairs | judgments |",
        "|---|---:|---:|---:|",
    ]
    for criterion, stats in agreement.items():
        lines.append(f"| {markdown_text(criterion)} | {_fmt(stats['alpha'])} | {stats['units']} | "
                     f"{stats['judgments']} |")
    lines += [
        "",
        "## Annotator quality",
        "",
        "Gold accuracy per annotator (share of gold pairs answered as expected, overall "
        "criterion).",
        "",
        f"- annotators with gold votes: {gold['annotators_with_gold']}",
        f"- min / median / max: {_fmt(gold['min'])} / {_fmt(gold['median'])} / "
        f"{_fmt(gold['max'])}",
        f"- excluded by quality control: {gold['excluded']}",
    ]
    if gold["below_threshold"] is not None:
        lines.append(f"- below the export's threshold {options.min_gold_accuracy}: "
                     f"{gold['below_threshold']} (left out)")
    lines += ["", "| gold accuracy | annotators |", "|---|---:|"]
    lines += [f"| {label} | {count} |" for label, count in gold["buckets"].items()]
    lines += [
        "",
        "## Filters used",
        "",
        "```json",
        # JSON escapes line breaks, so nothing in it can close the fence; other characters as
        # they are.
        json.dumps(options.describe(), indent=2, sort_keys=True, ensure_ascii=False),
        "```",
        "",
        "## Labels",
        "",
        "Image 0 / A is the image of the campaign's run A, whatever side it was shown on. "
        "label_0/label_1 are 1/0 when image 0 won, 0/1 when image 1 won, 0.5/0.5 for ties "
        "(and both-bad). DPO `chosen` is the preferred image. Annotators are pseudonymised "
        "(HMAC-SHA256 of the user id, keyed by the server secret and the campaign) unless "
        "raw usernames were asked for.",
        "",
    ]
    if campaign.task_kind == TaskKind.BEST_OF_K:
        mode = "ranks all K by successive picks" if campaign.rank_all else "picks the best"
        lines += [
            f"Best-of-K campaign (K = {campaign.k}; each vote {mode}): a vote is written as "
            "the preference pairs it states, image A the lower run id. `screen_k` is K, "
            "`screen_stage` the pick that stated the pair (0: the best), `weight` the pair's "
            "share of its vote (one vote's pairs sum to 1; 1 for a pairwise vote); the "
            "vote count above counts each vote once.",
            "",
        ]
    return "\n".join(lines)
