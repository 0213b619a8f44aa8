"""Agreement among annotators, per criterion (Krippendorff's alpha, nominal)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from evalhub.campaigns.models import AnnotatorFlag, Campaign
from evalhub.campaigns.quality.annotators import human_judgments
from ratings import krippendorff_alpha


def agreement_by_criterion(*, campaign: Campaign) -> dict[str, dict]:
    """Krippendorff's alpha (nominal) among annotators, per criterion, on non-gold tasks."""
    excluded = set(AnnotatorFlag.objects.filter(campaign=campaign, excluded=True)
                   .values_list("annotator_id", flat=True))
    rows = human_judgments(campaign).filter(task__is_gold=False).exclude(
        annotator_id__in=excluded).values_list("criterion", "task_id", "annotator_id", "outcome")
    by_criterion: dict[str, list] = defaultdict(list)
    for criterion, task_id, annotator_id, outcome in rows:
        by_criterion[criterion].append((task_id, annotator_id, outcome))
    result = {}
    for criterion in campaign.criteria:
        triples = by_criterion.get(criterion, [])
        if not triples:
            result[criterion] = {"alpha": None, "units": 0, "judgments": 0}
            continue
        units, coders, values = zip(*triples, strict=True)
        alpha = krippendorff_alpha(list(units), list(coders), list(values))
        value = None if alpha.alpha is None or np.isnan(alpha.alpha) else float(alpha.alpha)
        result[criterion] = {"alpha": value, "units": int(alpha.n_units),
                             "judgments": len(triples)}
    return result
