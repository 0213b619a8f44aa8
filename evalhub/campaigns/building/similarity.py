"""LPIPS A-vs-B distances for campaign pairs, used to skip near-identical pairs.

Distances already stored as ``PairMetric`` rows are reused; missing ones are computed with the
metrics package (on the worker that builds the campaign) and stored for next time.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from evalhub.evaluation.models import MetricName, PairMetric
from evalhub.runs.models import Image

logger = logging.getLogger(__name__)
LPIPS_SIDE = 256  # both images are resized to this square so any two runs can be compared


def _load(image: Image) -> torch.Tensor:
    with default_storage.open(image.blob.file.name, "rb") as handle:
        pil = PILImage.open(io.BytesIO(handle.read())).convert("RGB")
    pil = pil.resize((LPIPS_SIDE, LPIPS_SIDE), PILImage.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)


def lpips_pair_distances(pairs: Sequence[tuple[Image, Image]]) -> list[float] | None:
    """LPIPS for each (image_a, image_b); None when no LPIPS backbone can be loaded."""
    from metrics.lpips_distance import LpipsScorer
    from metrics.weights import WeightsMissingError

    stored = {
        (row.image_a_id, row.image_b_id): row.value
        for row in PairMetric.objects.filter(
            metric=MetricName.LPIPS, image_a__in=[a for a, _ in pairs],
            image_b__in=[b for _, b in pairs])
    }
    missing = [(a, b) for a, b in pairs if (a.pk, b.pk) not in stored]
    if missing:
        try:
            scorer = LpipsScorer(device="cpu")
        except WeightsMissingError as exc:
            logger.warning("LPIPS unavailable, near-identical pairs are kept: %s", exc)
            return None
        for start in range(0, len(missing), 32):
            chunk = missing[start:start + 32]
            values = scorer.pairwise_distance(torch.stack([_load(a) for a, _ in chunk]),
                                              torch.stack([_load(b) for _, b in chunk]))
            info = scorer.info
            PairMetric.objects.bulk_create([
                PairMetric(image_a=a, image_b=b, metric=MetricName.LPIPS, value=float(v),
                           backbone_id=info.backbone_id, weights_sha256=info.weights_sha256,
                           calibrated=info.calibrated, library_versions=info.library_versions)
                for (a, b), v in zip(chunk, values, strict=True)
            ], ignore_conflicts=True)
            stored.update({(a.pk, b.pk): float(v) for (a, b), v in zip(chunk, values,
                                                                      strict=True)})
    return [stored[(a.pk, b.pk)] for a, b in pairs]
