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
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from django.core.files.storage import default_storage

from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.evaluation import backbones
from evalhub.evaluation.definitions import (
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
from metrics.imageio import decode_image
from metrics.kid import kernel_inception_distance

# --- one shard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptDiversity:
    """LPIPS diversity of one prompt's images: the mean pairwise LPIPS distance of its ``n``
    images (seeds), in LPIPS units (0 = identical)."""

    value: float
    n: int


@dataclass
class ShardResult:
    """What one shard computed, before it is stored.

    ``fid_stats`` are the shard's partial FID (or FVD) statistics (``GaussianStats`` sums,
    which merge exactly); ``clip_scores`` maps image id to CLIP-score (100 x cosine
    similarity, clipped at 0); ``lpips`` maps prompt id to its diversity;
    ``features_computed`` counts the feature vectors that were not in the cache.
    """

    n: int
    backbones: dict[str, Provenance] = field(default_factory=dict)
    fid_stats: bytes | None = None
    clip_scores: dict[int, float] = field(default_factory=dict)
    lpips: dict[int, PromptDiversity] | None = None
    features_computed: int = 0
    video_values: dict[str, dict[int, float]] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The shard's JSON payload, read back by the finalize step (:func:`shard_backbone`,
        :func:`shard_diversities`)."""
        out: dict[str, Any] = {"backbones": {name: prov.as_fields()
                                             for name, prov in self.backbones.items()},
                               "n": self.n}
        if self.lpips is not None:
            out["lpips"] = {str(prompt_id): {"value": d.value, "n": d.n}
                            for prompt_id, d in self.lpips.items()}
        return out


def _read_blob(blob: ImageBlob) -> bytes:
    with default_storage.open(blob.file.name, "rb") as handle:
        return handle.read()


def _loader(blob: ImageBlob) -> Callable[[], torch.Tensor]:
    # Raw stored bytes go to the metrics decoder, which handles grey, alpha, 16-bit and EXIF.
    return lambda: decode_image(_read_blob(blob), name=f"{blob.file.name} (sha256 {blob.sha256})")


def _provenance(backbone: Any) -> Provenance:
    return Provenance(**dataclasses.asdict(backbone.info))


def _lpips_group(scorer: Any, images: list[torch.Tensor]) -> float:
    """Diversity of one prompt's images; all are resized (bilinear, antialiased) to the size
    of the first (lowest seed) image, since LPIPS compares same-sized images."""
    size = tuple(images[0].shape[-2:])
    same = [img if tuple(img.shape[-2:]) == size else
            F.interpolate(img[None].float(), size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            for img in images]
    return scorer.diversity(torch.stack(same))


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
        extractor = backbones.i3d(dict(options))
        result.backbones["i3d"] = _provenance(extractor)
        if is_run_shard or not has_reference_stats(extractor.backbone_id):
            result.fid_stats = i3d_stats(extractor, videos, cache).to_bytes()
    if not blobs:
        result.features_computed = cache.stored
        return result
    items = [(blob.sha256, _loader(blob)) for blob in blobs]

    if INCEPTION_METRICS & set(metrics):
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
        embedder = backbones.clip(options)
        result.backbones["clip"] = _provenance(embedder)
        emb = features_for(items, embedder, cache)
        if wants_clip_score:
            texts = sorted({img.prompt.text for img in images})
            text_emb = dict(zip(texts, embedder.text_embeddings(texts), strict=True))
            scores = clip_scores(emb, np.stack([text_emb[img.prompt.text] for img in images]))
            result.clip_scores = {img.id: float(s) for img, s in zip(images, scores, strict=True)}

    if "lpips_diversity" in metrics and is_run_shard:
        scorer = backbones.lpips(options)
        result.backbones["lpips"] = _provenance(scorer)
        by_prompt: dict[int, list[Image]] = defaultdict(list)
        for img in images:
            by_prompt[img.prompt_id].append(img)
        result.lpips = {
            prompt_id: PromptDiversity(_lpips_group(scorer, [_loader(i.blob)() for i in group]),
                                       len(group))
            for prompt_id, group in by_prompt.items() if len(group) >= 2}
    result.features_computed = cache.stored
    wanted_video = VIDEO_METRICS & set(metrics)
    if wanted_video and is_run_shard:
        result.video_values = video_values(wanted_video, options, images, result.backbones)
    return result


def video_values(metrics: Collection[str], options: Mapping[str, Any], images: Sequence[Image],
                 provenances: dict[str, Provenance]) -> dict[str, dict[int, float]]:
    """Per-video values of a run shard's items that have a video, streamed from storage
    (metrics.video_metrics; one decoder pass per video and metric family):

    * ``video_clip_score``: mean over ``video_frames`` evenly spaced frames of
      100 max(cos(frame, prompt), 0); ``temporal_consistency``: mean CLIP cosine of
      consecutive sampled frames (from the same embeddings; none for a one-frame video);
    * ``flicker``: mean LPIPS of consecutive frames at ``flicker_short_side`` px.

    Records the backbones used in ``provenances`` ("clip", "lpips").
    """
    from metrics.video_frames import FrameSampling
    from metrics.video_metrics import VideoClipScorer, clip_result, video_flicker

    opts = {**VIDEO_OPTION_DEFAULTS, **options}
    videos = [img for img in images if img.video_id is not None]
    out: dict[str, dict[int, float]] = {m: {} for m in metrics}
    if metrics & {"video_clip_score", "temporal_consistency"}:
        embedder = backbones.clip(dict(options))
        provenances["clip"] = _provenance(embedder)
        sampling = FrameSampling(count=int(opts["video_frames"]))
        scorer = VideoClipScorer(embedder, sampling=sampling)
        texts = sorted({img.prompt.text for img in videos})
        text_emb = dict(zip(texts, embedder.text_embeddings(texts), strict=True)) if texts else {}
        for img in videos:
            with default_storage.open(img.video.file.name, "rb") as handle:
                emb, indices = scorer.frame_embeddings(handle)
            result = clip_result(emb, text_emb[img.prompt.text], indices, sampling.describe(),
                                 embedder.info)
            if "video_clip_score" in out:
                out["video_clip_score"][img.id] = result.clip_score
            if "temporal_consistency" in out and result.temporal_consistency is not None:
                out["temporal_consistency"][img.id] = result.temporal_consistency
    if "flicker" in metrics:
        lpips_scorer = backbones.lpips(dict(options))
        provenances["lpips"] = _provenance(lpips_scorer)
        for img in videos:
            if img.video.frame_count < 2:
                continue
            with default_storage.open(img.video.file.name, "rb") as handle:
                out["flicker"][img.id] = video_flicker(
                    lpips_scorer, handle, short_side=int(opts["flicker_short_side"])).flicker
    return out


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


def shard_diversities(payloads: Sequence[Mapping[str, Any]]) -> dict[int, PromptDiversity]:
    """Per-prompt LPIPS diversities of the run shards' payloads, by prompt id."""
    return {int(prompt_id): PromptDiversity(float(d["value"]), int(d["n"]))
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
    """Run LPIPS diversity = mean over prompts (with at least two images) of their diversity."""
    if not per_prompt:
        raise MetricNotComputed("LPIPS diversity needs at least 2 images (seeds) of one prompt; "
                                "every prompt of this run has a single image")
    value = float(np.mean([d.value for d in per_prompt.values()]))
    return MetricComputed(value=value, n_images=sum(d.n for d in per_prompt.values()),
                          details={"prompts": len(per_prompt)})
