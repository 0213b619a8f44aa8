"""The preference pairs a best-of-K ranking states, and their weights: the one rule of the
rankings export (exports/kwise.py) and of the pair exports (exports/screens.py).

A ranking is a sequence of picks; at pick ``t`` the annotator chose ``c_t`` from the runs still
on offer ``R_t``. Each pick yields the pairs (``c_t`` chosen, ``j`` rejected) for every ``j`` in
``R_t`` other than ``c_t`` -- the pairs the vote actually states: best of K gives K - 1 pairs
(the pick over each other image), a full ranking of K all K(K-1)/2 pairs. No pair between two
images never picked is made up. Every pair of one vote carries the weight
``1 / (pairs the vote gives)``, so each vote weighs 1 in total, whatever K and the mode (as
InstructGPT trains all pairs of one ranking as a single batch element).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PreferencePair:
    """One implied preference of a ranking: ``chosen`` over ``rejected`` at pick ``stage``."""

    chosen: int  # canonical position
    rejected: int
    stage: int  # 0 for the best pick
    weight: float


def implied_pairs(ranking: list[int], k: int) -> list[PreferencePair]:
    """The preference pairs a ranking (canonical positions, best first) of K images states,
    with weights summing to 1 (module docstring)."""
    left = list(range(k))
    pairs: list[tuple[int, int, int]] = []
    for stage, pick in enumerate(ranking):
        if len(left) < 2:
            break
        left.remove(pick)
        pairs += [(pick, other, stage) for other in left]
    return [PreferencePair(c, r, s, 1.0 / len(pairs)) for c, r, s in pairs]
