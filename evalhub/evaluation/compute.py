"""The torch side of metric jobs: one shard's features and per-image values, and the metric
arithmetic of the finalize step.

Only gpu workers import this module (through the worker-side services in
:mod:`evalhub.evaluation.services`, which import it on first use), so web processes never load
torch. Nothing here writes a row except the feature cache, whose job that is: the services
store what these functions return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from django.core.files.storage import default_storage
from django.db import DatabaseError

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.core.errors import EvalHubError
from evalhub.evaluation import backbones
from evalhub.evaluation.definitions import (
    CLIP_METRICS,
    INCEPTION_METRICS,
    VIDEO_METRICS,
    VIDEO_OPTION_DEFAULTS,
    VIDEO_REFERENCE_METRICS,
    MetricComputed,
    MetricNotComputed,
    Provenance,
)
from evalhub.evaluation.feature_cache import DatabaseFeatureCache
from evalhub.runs.models import Image
from metrics.clip_score import clip_scores
from metrics.cmmd import cmmd
from metrics.feature_cache import features_for
from metrics.gaussian import GaussianStats, InsufficientSamplesError, frechet_distance
from metrics.imageio import ImageDecodeError, decode_image
from metrics.kid import kernel_inception_distance
from metrics.lpips_distance import LPIPS_MIN_SIDE, lpips_input_size
from metrics.video_frames import VideoDecodeError
from metrics.weights import WeightsMissingError

logger = logging.getLogger(__name__)

# --- one shard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptDiversity:
    """LPIPS diversity of one prompt's images: the mean pairwise LPIPS distance of its ``n``
    images (seeds), in LPIPS units (0 = identical). ``upsampled``: the images were smaller
    than LPIPS's AlexNet takes and were compared upsampled to ``LPIPS_MIN_SIDE`` px."""

    value: float
    n: int
    upsampled: bool = False


@dataclass
class ShardResult:
    """What one shard computed, before it is stored.

    ``fid_stats`` are the shard's partial FID (or FVD) statistics (``GaussianStats`` sums,
    which merge exactly); ``clip_scores`` maps image id to CLIP-score (100 x cosine
    similarity, clipped at 0); ``lpips`` maps prompt id to its diversity;
    ``features_computed`` counts the feature vectors that were not in the cache; ``errors``
    maps a metric this shard could not compute to why (the job reports it in
    ``metric_errors``; the shard's other metrics are kept).
    """

    n: int
    backbones: dict[str, Provenance] = field(default_factory=dict)
    fid_stats: bytes | None = None
    clip_scores: dict[int, float] = field(default_factory=dict)
    lpips: dict[int, PromptDiversity] | None = None
    features_computed: int = 0
    video_values: dict[str, dict[int, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The shard's JSON payload, read back by the finalize step (:func:`shard_backbone`,
        :func:`shard_diversities`)."""
        out: dict[str, Any] = {"backbones": {name: prov.as_fields()
                                             for name, prov in self.backbones.items()},
                               "n": self.n}
        if self.lpips is not None:
            out["lpips"] = {str(prompt_id): {"value": d.value, "n": d.n,
                                             **({"upsampled": True} if d.upsampled else {})}
                            for prompt_id, d in self.lpips.items()}
        if self.video_values:
            # The finalize step reads the job's own per-video values from here, not from the
            # ImageMetric rows, which a job on the same run with other options may overwrite.
            out["video_values"] = {metric: {str(image_id): value
                                            for image_id, value in values.items()}
                                   for metric, values in self.video_values.items()}
        if self.errors:
            out["errors"] = dict(self.errors)
        return out


#: Errors that are the job's, not one metric's: missing weights, an unreadable image or video,
#: bad input (fail the job at once, as nothing can heal them) and database errors (the task
#: retries those).
_JOB_ERRORS = (WeightsMissingError, ImageDecodeError, VideoDecodeError, EvalHubError,
               DatabaseError)


@contextlib.contextmanager
def metric_errors(errors: dict[str, str], metrics: Collection[str]) -> Iterator[None]:
    """Run one metric family's work; what makes it fail is recorded in ``errors`` for each of
    ``metrics`` instead of failing the shard's other metrics. A metric that cannot be computed
    from its input (MetricNotComputed, ValueError) keeps its message; anything else is a bug,
    logged with its traceback and recorded as ``internal error: <repr>``. :data:`_JOB_ERRORS`
    propagate."""
    try:
        yield
    except _JOB_ERRORS:
        raise
    except (MetricNotComputed, ValueError) as exc:
        message = str(exc)
    except Exception as exc:
        logger.exception("metric(s) %s failed", ", ".join(sorted(metrics)))
        message = f"internal error: {exc!r}"
    else:
        return
    for metric in metrics:
        errors[metric] = message[:2000]


def _read_blob(blob: ImageBlob) -> bytes:
    with default_storage.open(blob.file.name, "rb") as handle:
        return handle.read()


def _loader(blob: ImageBlob) -> Callable[[], torch.Tensor]:
    # Raw stored bytes go to the metrics decoder, which handles grey, alpha, 16-bit and EXIF.
    return lambda: decode_image(_read_blob(blob), name=f"{blob.file.name} (sha256 {blob.sha256})")


def _provenance(backbone: Any) -> Provenance:
    return Provenance(**dataclasses.asdict(backbone.info))


def _lpips_group(scorer: Any, images: list[torch.Tensor]) -> PromptDiversity:
    """Diversity of one prompt's images; all are resized (bilinear, antialiased) to the size
    of the first (lowest seed) image, since LPIPS compares same-sized images. Images under
    ``LPIPS_MIN_SIDE`` px on the shorter side are upsampled by the scorer (and marked so)."""
    size = tuple(images[0].shape[-2:])
    same = [img if tuple(img.shape[-2:]) == size else
            F.interpolate(img[None].float(), size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            for img in images]
    return PromptDiversity(scorer.diversity(torch.stack(same)), len(images),
                           upsampled=lpips_input_size(*size) != size)


def shard_compute(*, metrics: Collection[str], options: Mapping[str, Any], is_run_shard: bool,
                  images: Sequence[Image], blobs: Sequence[ImageBlob],
                  has_reference_stats: Callable[[str], bool],
                  videos: Sequence[VideoBlob] = ()) -> ShardResult:
    """Features, partial statistics and per-image values of one shard.

    ``images`` are a run shard's images (with ``blob``, ``video`` and ``prompt`` loaded,
    sorted by prompt, seed), ``blobs`` the images' files (for a reference shard, the reference
    set's), ``videos`` a video reference set's shard (FVD; a run shard's videos are its
    images'). Features go through the database feature cache: only cache misses are computed.
    ``has_reference_stats(backbone_id)`` says whether the reference set's FID (FVD) statistics
    for that backbone are already stored, in which case a FID-only (FVD-only) reference shard
    reads nothing.
    """
    if is_run_shard:
        videos = [img.video for img in images if img.video_id is not None]
    result = ShardResult(n=len(videos) if videos and not blobs else len(blobs))
    if not blobs and not videos:
        return result
    cache = DatabaseFeatureCache()
    if VIDEO_REFERENCE_METRICS & set(metrics):
        with metric_errors(result.errors, VIDEO_REFERENCE_METRICS & set(metrics)):
            extractor = backbones.i3d(dict(options))
            result.backbones["i3d"] = _provenance(extractor)
            if is_run_shard or not has_reference_stats(extractor.backbone_id):
                result.fid_stats = i3d_stats(extractor, videos, cache).to_bytes()
    if not blobs:
        result.features_computed = cache.stored
        return result
    items = [(blob.sha256, _loader(blob)) for blob in blobs]

    # Each metric family below fails alone (metric_errors): its metrics are reported in the
    # job's metric_errors, the shard's other metrics are kept.
    wanted = set(metrics)
    if INCEPTION_METRICS & wanted:
        with metric_errors(result.errors, INCEPTION_METRICS & wanted):
            extractor = backbones.inception(options)
            result.backbones["inception"] = _provenance(extractor)
            skip = (not is_run_shard and "kid" not in metrics
                    and has_reference_stats(extractor.backbone_id))
            if not skip:
                feats = features_for(items, extractor, cache)
                if "fid" in metrics:
                    result.fid_stats = GaussianStats.from_features(feats).to_bytes()

    wants_clip_score = "clip_score" in metrics and is_run_shard
    if wants_clip_score or "cmmd" in metrics:
        with metric_errors(result.errors, CLIP_METRICS & wanted):
            embedder = backbones.clip(options)
            result.backbones["clip"] = _provenance(embedder)
            emb = features_for(items, embedder, cache)
            if wants_clip_score:
                texts = sorted({img.prompt.text for img in images})
                text_emb = dict(zip(texts, embedder.text_embeddings(texts), strict=True))
                scores = clip_scores(emb, np.stack([text_emb[img.prompt.text] for img in images]))
                result.clip_scores = {img.id: float(s)
                                      for img, s in zip(images, scores, strict=True)}

    if "lpips_diversity" in metrics and is_run_shard:
        with metric_errors(result.errors, {"lpips_diversity"}):
            scorer = backbones.lpips(options)
            result.backbones["lpips"] = _provenance(scorer)
            by_prompt: dict[int, list[Image]] = defaultdict(list)
            for img in images:
                by_prompt[img.prompt_id].append(img)
            result.lpips = {
                prompt_id: _lpips_group(scorer, [_loader(i.blob)() for i in group])
                for prompt_id, group in by_prompt.items() if len(group) >= 2}
    result.features_computed = cache.stored
    wanted_video = VIDEO_METRICS & wanted
    if wanted_video and is_run_shard:
        result.video_values = video_values(wanted_video, options, images, result.backbones,
                                           result.errors)
    return result


def video_values(metrics: Collection[str], options: Mapping[str, Any], images: Sequence[Image],
                 provenances: dict[str, Provenance],
                 errors: dict[str, str] | None = None) -> dict[str, dict[int, float]]:
    """Per-video values of a run shard's items that have a video, streamed from storage
    (metrics.video_metrics; one decoder pass per video and metric family):

    * ``video_clip_score``: mean over ``video_frames`` evenly spaced frames of
      100 max(cos(frame, prompt), 0); ``temporal_consistency``: mean CLIP cosine of
      consecutive sampled frames (from the same embeddings; none for a one-frame video);
    * ``flicker``: mean LPIPS of consecutive frames at ``flicker_short_side`` px.

    Records the backbones used in ``provenances`` ("clip", "lpips"); a family that fails is
    recorded in ``errors`` for its metrics (:func:`metric_errors`) and the other one still
    computed.
    """
    from metrics.video_frames import FrameSampling
    from metrics.video_metrics import VideoClipScorer, clip_result, video_flicker

    errors = {} if errors is None else errors
    opts = {**VIDEO_OPTION_DEFAULTS, **options}
    videos = [img for img in images if img.video_id is not None]
    out: dict[str, dict[int, float]] = {m: {} for m in metrics}
    clip_metrics = set(metrics) & {"video_clip_score", "temporal_consistency"}
    if clip_metrics:
        with metric_errors(errors, clip_metrics):
            embedder = backbones.clip(dict(options))
            provenances["clip"] = _provenance(embedder)
            sampling = FrameSampling(count=int(opts["video_frames"]))
            scorer = VideoClipScorer(embedder, sampling=sampling)
            texts = sorted({img.prompt.text for img in videos})
            text_emb = (dict(zip(texts, embedder.text_embeddings(texts), strict=True))
                        if texts else {})
            for img in videos:
                with default_storage.open(img.video.file.name, "rb") as handle:
                    emb, indices = scorer.frame_embeddings(handle)
                result = clip_result(emb, text_emb[img.prompt.text], indices,
                                     sampling.describe(), embedder.info)
                if "video_clip_score" in out:
                    out["video_clip_score"][img.id] = result.clip_score
                if "temporal_consistency" in out and result.temporal_consistency is not None:
                    out["temporal_consistency"][img.id] = result.temporal_consistency
    if "flicker" in metrics:
        with metric_errors(errors, {"flicker"}):
            lpips_scorer = backbones.lpips(dict(options))
            provenances["lpips"] = _provenance(lpips_scorer)
            for img in videos:
                if img.video.frame_count < 2:
                    continue
                with default_storage.open(img.video.file.name, "rb") as handle:
                    out["flicker"][img.id] = video_flicker(
                        lpips_scorer, handle, short_side=int(opts["flicker_short_side"])).flicker
    # A family that failed stores none of its values (not part of a shard's videos).
    return {metric: values for metric, values in out.items() if metric not in errors}


def i3d_stats(extractor: Any, videos: Sequence[VideoBlob], cache: DatabaseFeatureCache,
              chunk: int = 16) -> GaussianStats:
    """Partial FVD statistics of ``videos``: the count, sum and sum of outer products of
    their I3D features (one clip per video: its first ``clip_frames`` frames;
    :mod:`metrics.i3d`), which merge exactly across shards as FID's do.

    Features go through the feature cache keyed by the video file's sha256 and the I3D
    backbone id; the missing ones are computed ``chunk`` videos at a time, streamed from
    storage (a few clips in memory, at most ``chunk`` files open).
    """
    backbone_id = extractor.backbone_id
    found = cache.get_many([v.sha256 for v in videos], backbone_id)
    missing = list({v.sha256: v for v in videos if v.sha256 not in found}.values())
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        with contextlib.ExitStack() as stack:
            handles = [stack.enter_context(default_storage.open(v.file.name, "rb"))
                       for v in part]
            features = extractor.extract_sources(handles)
        computed = {v.sha256: f for v, f in zip(part, features, strict=True)}
        cache.put_many(computed, backbone_id)
        found.update(computed)
    return GaussianStats.from_features(np.stack([found[v.sha256] for v in videos]))


# --- reading shard payloads back ---------------------------------------------------------------


def shard_backbone(payloads: Sequence[Mapping[str, Any]], name: str) -> Provenance:
    """The one ``name`` backbone ("inception", "clip", "lpips", "i3d") the shards were computed
    with.

    Shards computed by workers with different weights cannot be merged: that is reported as
    the metric's error instead of mixing features of two backbones.
    """
    infos = [Provenance.from_json(p["backbones"][name]) for p in payloads
             if name in p.get("backbones", {})]
    distinct = {(i.backbone_id, i.weights_sha256, i.calibrated,
                 tuple(sorted(i.library_versions.items()))) for i in infos}
    if len(distinct) != 1:
        ids = sorted({i.backbone_id for i in infos})
        raise MetricNotComputed(
            f"shards were computed with different {name} backbones ({', '.join(ids)}): the "
            "workers disagree on weights (check EVALHUB_RANDOM_WEIGHTS and the weights files "
            "on every gpu worker), run the job again" if ids else f"no {name} features")
    return infos[0]


def shard_video_values(payloads: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float]:
    """Per-video values of ``metric`` in the run shards' payloads, by image id (none from
    shards stored by a release that kept them only as ImageMetric rows)."""
    return {int(image_id): float(value) for p in payloads
            for image_id, value in p.get("video_values", {}).get(metric, {}).items()}


def shard_diversities(payloads: Sequence[Mapping[str, Any]]) -> dict[int, PromptDiversity]:
    """Per-prompt LPIPS diversities of the run shards' payloads, by prompt id."""
    return {int(prompt_id): PromptDiversity(float(d["value"]), int(d["n"]),
                                            upsampled=bool(d.get("upsampled", False)))
            for p in payloads for prompt_id, d in p.get("lpips", {}).items()}


# --- finalize arithmetic -----------------------------------------------------------------------


def merge_stats(parts: Sequence[bytes]) -> GaussianStats:
    """Exact union of partial FID statistics (float64 sums of x and x x^T, and counts)."""
    stats = GaussianStats.from_bytes(parts[0])
    for part in parts[1:]:
        stats = stats.merge(GaussianStats.from_bytes(part))
    return stats


def stats_from_bytes(data: bytes) -> GaussianStats:
    return GaussianStats.from_bytes(data)


def stats_of_features(features: np.ndarray) -> GaussianStats:
    return GaussianStats.from_features(features)


def fid(*, run_parts: Sequence[bytes], reference: GaussianStats, allow_rank_deficient: bool,
        antialias: bool, run_name: str, reference_name: str) -> MetricComputed:
    """FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) between the reference set's
    and the run's InceptionV3 feature Gaussians (squared feature units; lower is better)."""
    if not run_parts:
        raise MetricNotComputed("no FID statistics were stored for the run's images")
    run_stats = merge_stats(run_parts)
    try:
        value = frechet_distance(reference, run_stats, allow_rank_deficient=allow_rank_deficient,
                                 names=("reference", "generated"))
    except InsufficientSamplesError as exc:
        raise MetricNotComputed(
            f"FID not computed (reference set {reference_name!r}, run {run_name!r}): {exc} "
            "In a metric job that is the option fid_allow_rank_deficient=true; the option "
            "fid_feature=64/192/768 uses lower-dimensional features instead.") from exc
    details: dict[str, Any] = {"n_reference": reference.n, "dim": run_stats.dim,
                               "resize": "antialias" if antialias else "tf1-bilinear"}
    if run_stats.n <= run_stats.dim or reference.n <= reference.dim:
        details["rank_deficient"] = True
    return MetricComputed(value=value, n_images=run_stats.n, details=details)


def fvd(*, run_parts: Sequence[bytes], reference: GaussianStats, backbone: Provenance,
        allow_rank_deficient: bool, clip_frames: int, run_name: str,
        reference_name: str) -> MetricComputed:
    """FVD = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) between the reference
    set's and the run's I3D feature Gaussians (Kinetics-400 logits, one clip of the first
    ``clip_frames`` frames per video; unbiased covariances as FID and cd-fvd's
    ``frechet_distance``: :func:`metrics.video_metrics.fvd_from_stats`), in squared logit
    units; lower is better."""
    from metrics.video_metrics import fvd_from_stats
    from metrics.weights import BackboneInfo

    if not run_parts:
        raise MetricNotComputed("no FVD statistics were stored for the run's videos")
    run_stats = merge_stats(run_parts)
    try:
        result = fvd_from_stats(reference, run_stats, BackboneInfo(**backbone.as_fields()),
                                allow_rank_deficient=allow_rank_deficient)
    except InsufficientSamplesError as exc:
        raise MetricNotComputed(
            f"FVD not computed (reference set {reference_name!r}, run {run_name!r}): {exc} "
            "In a metric job that is the option fvd_allow_rank_deficient=true.") from exc
    details: dict[str, Any] = {"n_reference": result.n_reference, "dim": run_stats.dim,
                               "clip_frames": clip_frames}
    if result.rank_deficient:
        details["rank_deficient"] = True
    return MetricComputed(value=result.fvd, n_images=result.n_generated, details=details)


def kid(*, reference: np.ndarray, run: np.ndarray, subsets: int,
        subset_size: int) -> MetricComputed:
    """KID: the unbiased MMD^2 with the cubic polynomial kernel (x.y/d + 1)^3, averaged over
    ``subsets`` random subsets of ``subset_size`` (seed 0); ``std`` is its spread over them."""
    result = kernel_inception_distance(reference, run, subsets=subsets, subset_size=subset_size,
                                       seed=0)
    # subset_size: what was used (at most the smaller set); subset_size_asked: the option. The
    # estimate is unbiased at any subset size, so runs asked the same way are comparable even
    # when one of them, smaller, capped it (evaluation.models.COMPARABILITY_DETAILS).
    return MetricComputed(value=result.mean, std=result.std, n_images=len(run),
                          details={"subsets": result.subsets, "subset_size": result.subset_size,
                                   "subset_size_asked": subset_size,
                                   "n_reference": len(reference)})


def cmmd_of(*, reference: np.ndarray, run: np.ndarray, estimator: str) -> MetricComputed:
    """CMMD = 1000 x MMD^2 between the CLIP image embeddings, Gaussian RBF kernel with
    sigma = 10 (``estimator``: "reference" = google-research's V-statistic, "unbiased"); lower
    is better."""
    value = cmmd(reference, run, estimator=estimator)
    return MetricComputed(value=value, n_images=len(run),
                          details={"estimator": estimator, "n_reference": len(reference)})


def clip_score_summary(scores: Sequence[tuple[int, float]]
                       ) -> tuple[MetricComputed, dict[int, float]]:
    """Run CLIP-score = mean over images; per prompt, the mean of its images' scores.

    ``scores`` are (prompt id, image CLIP-score) pairs, one per image.
    """
    per_prompt: dict[int, list[float]] = defaultdict(list)
    for prompt_id, score in scores:
        per_prompt[prompt_id].append(score)
    value = float(np.mean([score for _, score in scores]))
    return (MetricComputed(value=value, n_images=len(scores),
                           details={"prompts": len(per_prompt)}),
            {p: float(np.mean(v)) for p, v in per_prompt.items()})


def lpips_summary(per_prompt: Mapping[int, PromptDiversity]) -> MetricComputed:
    """Run LPIPS diversity = mean over prompts (with at least two images) of their diversity.

    ``details``: ``prompts`` counted; where some prompts' images were smaller than LPIPS's
    AlexNet takes, ``prompts_upsampled`` (how many) and ``upsampled_to_px`` (the shorter side
    they were compared at, ``metrics.lpips_distance.LPIPS_MIN_SIDE``)."""
    if not per_prompt:
        raise MetricNotComputed("LPIPS diversity needs at least 2 images (seeds) of one prompt; "
                                "every prompt of this run has a single image")
    value = float(np.mean([d.value for d in per_prompt.values()]))
    details: dict[str, Any] = {"prompts": len(per_prompt)}
    upsampled = sum(d.upsampled for d in per_prompt.values())
    if upsampled:
        details.update(prompts_upsampled=upsampled, upsampled_to_px=LPIPS_MIN_SIDE)
    return MetricComputed(value=value, n_images=sum(d.n for d in per_prompt.values()),
                          details=details)
