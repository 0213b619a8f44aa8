"""LPIPS A-vs-B distances for campaign pairs, used to skip near-identical pairs.

Distances already stored as ``PairMetric`` rows are reused only when the backbone the current
settings load computed them: the same backbone id (which names random weights and their seed)
and the same ``calibrated`` flag. A build under real-weights settings therefore never filters on
distances that random weights left behind (nor the other way round); missing ones are computed
with the metrics package (on the worker that builds the campaign) and stored for next time.
Images are decoded by the one rule every metric uses (``metrics.imageio.decode_image``: 16-bit
rescaled, alpha composited on white, EXIF orientation applied), i.e. as annotators see them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from evalhub.campaigns.building.pairs import PairDistances
from evalhub.core.bounded import chunked
from evalhub.evaluation.models import MetricName, PairMetric
from evalhub.runs.models import Image
from metrics.imageio import decode_image

logger = logging.getLogger(__name__)
LPIPS_SIDE = 256  # both images are resized to this square so any two runs can be compared
CHUNK = 32  # pairs scored per LPIPS call


def _load(image: Image) -> torch.Tensor:
    """uint8 (3, LPIPS_SIDE, LPIPS_SIDE): the image decoded by the shared rule, resized
    (bicubic) to the common square."""
    with default_storage.open(image.blob.file.name, "rb") as handle:
        pixels = decode_image(handle.read(), name=f"{image.blob.file.name} (image {image.pk})")
    pil = PILImage.fromarray(pixels.permute(1, 2, 0).numpy())
    pil = pil.resize((LPIPS_SIDE, LPIPS_SIDE), PILImage.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)


def _stored_distances(pairs: Sequence[tuple[Image, Image]], *, backbone_id: str,
                      calibrated: bool) -> dict[tuple[int, int], float]:
    """The stored LPIPS distance of each of ``pairs`` that has one from this backbone, by
    (image_a id, image_b id).

    Read a chunk of pairs at a time (``core.bounded.chunked``): a campaign of 100,000 pairs
    would bind 200,000 ids in one statement, past the database's parameter limit. A chunk's
    filter (A in its A images, B in its B images) also matches the cross pairs of the chunk;
    only the pairs asked for are kept, so memory follows the pairs, not their cross product.
    """
    wanted = {(a.pk, b.pk) for a, b in pairs}
    stored: dict[tuple[int, int], float] = {}
    base = PairMetric.objects.filter(metric=MetricName.LPIPS, backbone_id=backbone_id,
                                     calibrated=calibrated)
    for chunk in chunked(pairs):
        rows = base.filter(image_a__in=[a.pk for a, _ in chunk],
                           image_b__in=[b.pk for _, b in chunk])
        for a_id, b_id, value in rows.values_list("image_a_id", "image_b_id", "value"):
            if (a_id, b_id) in wanted:
                stored[(a_id, b_id)] = value
    return stored


def lpips_pair_distances(pairs: Sequence[tuple[Image, Image]]) -> PairDistances | None:
    """LPIPS (unitless, 0 = identical) of each (image_a, image_b), in order, with the backbone
    that computed them; None when the settings' LPIPS backbone cannot be loaded (real weights
    asked for and missing), in which case no stored distance is used either."""
    from metrics.lpips_distance import LpipsScorer
    from metrics.weights import WeightsMissingError

    try:
        # Built even when every distance is stored: its identity says which rows may be reused.
        scorer = LpipsScorer(device="cpu")
    except WeightsMissingError as exc:
        logger.warning("LPIPS unavailable, near-identical pairs are kept: %s", exc)
        return None
    info = scorer.info
    stored = _stored_distances(pairs, backbone_id=info.backbone_id, calibrated=info.calibrated)
    missing = [(a, b) for a, b in pairs if (a.pk, b.pk) not in stored]
    for chunk in chunked(missing, CHUNK):
        values = scorer.pairwise_distance(torch.stack([_load(a) for a, _ in chunk]),
                                          torch.stack([_load(b) for _, b in chunk]))
        PairMetric.objects.bulk_create([
            PairMetric(image_a=a, image_b=b, metric=MetricName.LPIPS, value=float(v),
                       backbone_id=info.backbone_id, weights_sha256=info.weights_sha256,
                       calibrated=info.calibrated, library_versions=info.library_versions)
            for (a, b), v in zip(chunk, values, strict=True)
        ], ignore_conflicts=True)
        stored.update({(a.pk, b.pk): float(v) for (a, b), v in zip(chunk, values, strict=True)})
    return PairDistances(values=[stored[(a.pk, b.pk)] for a, b in pairs],
                         backbone_id=info.backbone_id, calibrated=info.calibrated)
