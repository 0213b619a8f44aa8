"""Reading metric values for other apps (leaderboards, metric judges, exports, campaigns)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from evalhub.evaluation.models import ImageMetric, PairMetric, RunMetric


@dataclass(frozen=True)
class MetricValue:
    value: float
    calibrated: bool
    backbone_id: str
    std: float | None = None


def run_metric_values(*, run_ids: Iterable[int]) -> dict[int, dict[str, MetricValue]]:
    """``{run_id: {metric: value}}``; the most recent value when several backbones exist."""
    result: dict[int, dict[str, MetricValue]] = {}
    rows = RunMetric.objects.filter(run_id__in=list(run_ids)).order_by("created_at")
    for row in rows:
        result.setdefault(row.run_id, {})[row.metric] = MetricValue(
            row.value, row.calibrated, row.backbone_id, row.std)
    return result


def image_metric_values(*, image_ids: Iterable[int], metric: str) -> dict[int, MetricValue]:
    rows = ImageMetric.objects.filter(image_id__in=list(image_ids), metric=metric).order_by(
        "created_at")
    return {row.image_id: MetricValue(row.value, row.calibrated, row.backbone_id) for row in rows}


def pair_metric_values(*, pairs: Iterable[tuple[int, int]], metric: str
                       ) -> dict[tuple[int, int], MetricValue]:
    pairs = list(pairs)
    ids = {i for pair in pairs for i in pair}
    rows = PairMetric.objects.filter(image_a_id__in=ids, image_b_id__in=ids, metric=metric)
    wanted = set(pairs)
    return {(r.image_a_id, r.image_b_id): MetricValue(r.value, r.calibrated, r.backbone_id)
            for r in rows if (r.image_a_id, r.image_b_id) in wanted}
