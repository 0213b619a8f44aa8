"""Votes far faster or slower than the campaign's usual pace."""

from __future__ import annotations

import numpy as np

from evalhub.campaigns.models import Campaign, Criterion
from evalhub.campaigns.quality.annotators import human_judgments


def latency_outliers(*, campaign: Campaign, z: float = 3.5) -> list[dict]:
    """Votes far faster or slower than usual: robust z-score of log latency (median/MAD).

    z_i = 0.6745 * (log t_i - median(log t)) / MAD(log t); |z_i| > ``z`` is an outlier
    (Iglewicz & Hoaglin). Log scale because vote times are right-skewed.
    """
    rows = list(human_judgments(campaign).filter(criterion=Criterion.OVERALL,
                                                 latency_ms__gt=0)
                .values_list("id", "annotator_id", "latency_ms"))
    if len(rows) < 5:
        return []
    logs = np.log([latency for _, _, latency in rows])
    median = np.median(logs)
    mad = np.median(np.abs(logs - median))
    if mad == 0:
        return []
    scores = 0.6745 * (logs - median) / mad
    return [
        {"judgment_id": jid, "annotator_id": aid, "latency_ms": latency,
         "z": round(float(score), 2), "kind": "fast" if score < 0 else "slow"}
        for (jid, aid, latency), score in zip(rows, scores, strict=True) if abs(score) > z
    ]
