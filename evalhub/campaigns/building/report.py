"""What a campaign's build report tells a scientist: the pairs or K-sets not asked, and why,
what the LPIPS near-duplicate filter did, and which runs no task shows.

The builders (pairs.py, kwise.py) count what they skip in ``Campaign.build_report``; the
campaign page, the ``campaign`` command and the error of a build that leaves nothing to ask
word those counts with this module, so the three say the same thing. Distances computed with
random weights are called uncalibrated wherever a count made with them is worded.

A run of the campaign that no task shows (``runs_without_tasks``: no image on the campaign's
prompts, or none that another run answered too) would stay on the leaderboard with no vote:
the build report words it in ``warnings`` (:func:`run_without_tasks`), and what was not asked
(:meth:`Skipped.sentence`) ends with those warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalhub.core.text import counted


def _count(report: Mapping[str, Any], key: str) -> int:
    try:
        return max(int(report.get(key, 0) or 0), 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Skipped:
    """What a build did not ask annotators: ``identical`` pairs or K-sets in which two runs
    made the very same file, ``near_identical`` pairs closer than the LPIPS threshold;
    ``uncalibrated``: those distances came from random weights."""

    identical: int
    near_identical: int
    unit: str  # "pair" or "set"
    uncalibrated: bool = False
    # The build report's warnings: runs no task shows (:func:`run_without_tasks`).
    warnings: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.identical + self.near_identical

    def sentence(self) -> str:
        """"8 sets not asked: two runs made the very same file" (both reasons, then the
        report's warnings, "; "-joined), or "" when nothing was skipped."""
        parts = []
        if self.identical:
            parts.append(f"{counted(self.identical, self.unit)} not asked: two "
                         "runs made the very same file")
        if self.near_identical:
            distance = "LPIPS distance, uncalibrated," if self.uncalibrated else "LPIPS distance"
            parts.append(f"{counted(self.near_identical, 'pair')} not "
                         f"asked: too alike to judge ({distance} under the campaign's "
                         "threshold)")
        parts += [warning[0].lower() + warning[1:] if parts else warning
                  for warning in self.warnings]
        return "; ".join(parts)


def skipped(report: Mapping[str, Any]) -> Skipped:
    """The skips a build report counts. A pair build's ``skipped_near_identical`` includes its
    identical pairs (both are left out); a best-of-K build (``k_sets``) has no LPIPS filter."""
    identical = _count(report, "skipped_identical")
    near = max(_count(report, "skipped_near_identical") - identical, 0)
    warnings = report.get("warnings")
    return Skipped(identical, near, "set" if "k_sets" in report else "pair",
                   uncalibrated=report.get("lpips_uncalibrated") is True,
                   warnings=tuple(str(w) for w in warnings if w)
                   if isinstance(warnings, list) else ())


def run_without_tasks(name: str, *, category: str, has_images: bool, unit: str) -> str:
    """The build report's warning of a run that no task shows (``unit``: "pair" or "set"):
    "Run 'stray' is in no pair: it has no image on the campaign's prompts (category 'colour');
    it gets no vote, and its leaderboard row stays empty"."""
    prompts = f"the campaign's prompts (category {category!r})" if category \
        else "the campaign's prompts"
    why = (f"none of its images on {prompts} has a counterpart to be compared with"
           if has_images else f"it has no image on {prompts}")
    return (f"Run {name!r} is in no {unit}: {why}; it gets no vote, and its leaderboard row "
            "stays empty")


def near_duplicate_filter(report: Mapping[str, Any]) -> str:
    """What the LPIPS near-duplicate filter did: "4 pairs skipped (LPIPS, uncalibrated)"
    (uncalibrated: random weights), "not applied: weights missing" (a threshold, but no
    distance to compare), or "" when the report says nothing of a filter (none asked for, or
    no build yet). A report written before builds recorded their backbone says so."""
    if report.get("lpips_filter") is True:
        near = skipped(report)
        flag = (", uncalibrated" if near.uncalibrated
                else "" if "lpips_backbone" in report else ", weights not recorded")
        return (f"{counted(near.near_identical, 'pair')} skipped "
                f"(LPIPS{flag})")
    why = report.get("lpips_not_applied")
    return f"not applied: {why}" if why else ""


def nothing_to_ask(report: Mapping[str, Any]) -> str:
    """The error of a build whose pairs or K-sets were all skipped: no task, so the campaign
    is not opened (an empty campaign would only tell annotators they rated everything)."""
    why = skipped(report).sentence()
    return ("Nothing to ask annotators, so the campaign was not opened"
            + (f". {why[0].upper()}{why[1:]}." if why else "."))
