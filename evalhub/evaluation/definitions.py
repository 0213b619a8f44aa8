"""What a metric job is: the metrics it can compute, its options, and the typed values its
steps hand each other.

No torch here: web processes (the API, ``manage.py compute_metrics``) validate jobs with it,
and the gpu side (:mod:`evalhub.evaluation.compute`) shares the same names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evalhub.core.errors import EvalHubError
from evalhub.evaluation.clip_names import (
    DEFAULT_CLIP_MODEL,
    canonical_tag,
    clip_model_problem,
    clip_pretrained_problem,
    is_weights_file,
)

#: Metrics a job can compute, in display order.
JOB_METRICS = ("fid", "kid", "clip_score", "cmmd", "lpips_diversity",
               "video_clip_score", "temporal_consistency", "flicker", "fvd")
#: What each metric measures, in a few words, for pages that offer them (docs/metrics.md has
#: the formulas and units).
METRIC_LABELS: dict[str, str] = {
    "fid": "FID: distance to real images (a reference set of images)",
    "kid": "KID: distance to real images, unbiased on small sets (a reference set of images)",
    "clip_score": "CLIP score: agreement with the prompt (a video run: its posters)",
    "cmmd": "CMMD: CLIP-space distance to real images (a reference set of images)",
    "lpips_diversity": "LPIPS diversity: how much a prompt's seeds differ",
    "video_clip_score": "Video CLIP score: agreement with the prompt over sampled frames",
    "temporal_consistency": "Temporal consistency: CLIP likeness of consecutive frames",
    "flicker": "Flicker: LPIPS between consecutive frames (lower is steadier)",
    "fvd": "FVD: distance to real videos (a reference set of videos)",
}
#: Metrics that compare the run's images (a video run's posters) with a reference set of
#: real images.
IMAGE_REFERENCE_METRICS = frozenset({"fid", "kid", "cmmd"})
#: Metrics that compare the run's videos with a reference set of real videos: FVD, the
#: Fréchet distance between Gaussian fits of I3D features (metrics.video_metrics).
VIDEO_REFERENCE_METRICS = frozenset({"fvd"})
#: Metrics that need a reference set (a job has one, so all of one kind).
REFERENCE_METRICS = IMAGE_REFERENCE_METRICS | VIDEO_REFERENCE_METRICS
#: Metrics computed on FID InceptionV3 features.
INCEPTION_METRICS = frozenset({"fid", "kid"})
#: Metrics computed on CLIP embeddings.
CLIP_METRICS = frozenset({"clip_score", "cmmd"})
#: Per-video metrics (runs whose outputs are videos; metrics.video_metrics): CLIP score over
#: sampled frames, temporal consistency (CLIP cosine of consecutive sampled frames), flicker
#: (LPIPS of consecutive frames). Their options are ``video_frames`` (frames sampled evenly
#: for the CLIP metrics, default 16) and ``flicker_short_side`` (px, default 256); they are
#: not in DEFAULT_OPTIONS so that image jobs keep their stored options.
VIDEO_METRICS = frozenset({"video_clip_score", "temporal_consistency", "flicker"})
#: FVD's options: ``fvd_clip_frames`` (frames of the one clip per video, its first ones; at
#: least 9, I3D's shortest input; default 16, "FVD16") and ``fvd_allow_rank_deficient`` (FVD
#: with fewer than 401 videos in a set, whose covariance is rank-deficient; default False, as
#: ``fid_allow_rank_deficient``).
VIDEO_OPTION_DEFAULTS: dict[str, Any] = {"video_frames": 16, "flicker_short_side": 256,
                                         "fvd_clip_frames": 16,
                                         "fvd_allow_rank_deficient": False}
#: The video options each metric is computed with: a job asking for the metric stores them
#: (defaults included) in its options, and the stored value's details name the one that
#: decides its way of computing (evaluation.models.COMPARABILITY_DETAILS).
VIDEO_METRIC_OPTIONS: dict[str, tuple[str, ...]] = {
    "video_clip_score": ("video_frames",), "temporal_consistency": ("video_frames",),
    "flicker": ("flicker_short_side",), "fvd": ("fvd_clip_frames", "fvd_allow_rank_deficient"),
}
#: The smallest ``flicker_short_side``: LPIPS's AlexNet has no fifth layer below 31 px on the
#: shorter side (metrics.lpips_distance.LPIPS_MIN_SIDE, which a test holds this to; that
#: module imports torch, which web processes do not).
FLICKER_MIN_SHORT_SIDE = 31

#: Job options and their defaults (docs/metrics.md explains each).
DEFAULT_OPTIONS: dict[str, Any] = {
    "antialias": True,  # resize mode of the FID InceptionV3 (True = torchmetrics >= 1.8)
    "fid_feature": "2048",  # pool3; "64", "192", "768" pick earlier pooled layers
    "fid_allow_rank_deficient": False,
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "cmmd_estimator": "reference",
    "shard_size": 64,
}
_OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "antialias": bool, "fid_feature": (str, int), "fid_allow_rank_deficient": bool,
    "kid_subsets": int, "kid_subset_size": int, "cmmd_estimator": str, "shard_size": int,
    "clip_model": str, "clip_pretrained": str, "video_frames": int, "flicker_short_side": int,
    "fvd_clip_frames": int, "fvd_allow_rank_deficient": bool,
}


#: Ranges of the integer options (inclusive). KID needs two images per subset (its unbiased
#: MMD estimate divides by m - 1; one gave NaN); the upper bounds keep one job from holding a
#: worker (and, on the embedded default's SQLite, the database's write lock during finalize)
#: for hours: an option of 10^9 subsets was accepted.
OPTION_RANGES: dict[str, tuple[int, int]] = {
    "kid_subsets": (1, 1_000), "kid_subset_size": (2, 10_000), "shard_size": (1, 1_024),
    "video_frames": (2, 1_000), "flicker_short_side": (FLICKER_MIN_SHORT_SIDE, 4_096),
    "fvd_clip_frames": (9, 128),
}
#: Why a range is what it is, where the bounds alone do not say.
_RANGE_REASONS = {
    "flicker_short_side": " pixels (LPIPS's AlexNet needs 31 on the shorter side)",
    "fvd_clip_frames": " (9: I3D's shortest clip)",
}
#: KID's cost is subsets x subset_size^2 kernel entries: at most 100 times the defaults'.
MAX_KID_KERNEL_WORK = 100 * DEFAULT_OPTIONS["kid_subsets"] * DEFAULT_OPTIONS["kid_subset_size"] ** 2


def normalize_metrics(metrics: Iterable[str]) -> list[str]:
    """Validated, de-duplicated metric names in canonical order."""
    wanted = [str(m).strip() for m in metrics if str(m).strip()]
    if not wanted:
        raise EvalHubError("Choose at least one metric.", details=list(JOB_METRICS))
    unknown = sorted(set(wanted) - set(JOB_METRICS))
    if unknown:
        raise EvalHubError(f"Unknown metric(s): {', '.join(unknown)}.",
                           details=[f"available: {', '.join(JOB_METRICS)}"])
    return [m for m in JOB_METRICS if m in wanted]


def normalize_options(options: Mapping[str, Any] | None,
                      metrics: Iterable[str] = ()) -> dict[str, Any]:
    """Options merged over the defaults (and over the video options of ``metrics``,
    :data:`VIDEO_METRIC_OPTIONS`, so that a job records every setting its values depend on),
    with types and ranges checked."""
    options = dict(options or {})
    problems = []
    for key, value in options.items():
        expected = _OPTION_TYPES.get(key)
        if expected is None:
            problems.append(f"unknown option {key!r} (known: {', '.join(sorted(_OPTION_TYPES))})")
        elif expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"option {key!r} must be an integer, got {value!r}")
        elif not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            problems.append(f"option {key!r} has the wrong type: {value!r}")
    video_defaults = {key: VIDEO_OPTION_DEFAULTS[key] for metric in metrics
                      for key in VIDEO_METRIC_OPTIONS.get(metric, ())}
    merged = {**DEFAULT_OPTIONS, **video_defaults, **options}
    merged["fid_feature"] = str(merged["fid_feature"])
    if not problems:
        if merged["fid_feature"] not in ("64", "192", "768", "2048"):
            problems.append("fid_feature must be one of 64, 192, 768, 2048")
        if merged["cmmd_estimator"] not in ("reference", "unbiased"):
            problems.append("cmmd_estimator must be 'reference' or 'unbiased'")
        for key, (low, high) in OPTION_RANGES.items():
            if key in merged and not low <= merged[key] <= high:
                problems.append(f"{key} must be between {low:,} and {high:,}"
                                + _RANGE_REASONS.get(key, ""))
        kernel_work = merged["kid_subsets"] * merged["kid_subset_size"] ** 2
        if not problems and kernel_work > MAX_KID_KERNEL_WORK:
            problems.append(
                f"kid_subsets x kid_subset_size^2 is {kernel_work:,}: at most "
                f"{MAX_KID_KERNEL_WORK:,} (100 times the defaults' kernel work), as the "
                "finalize step computes every subset's kernel matrices")
        problems.extend(_clip_problems(merged))
    if problems:
        raise EvalHubError("Invalid metric job options.", details=problems)
    return merged


def _clip_problems(merged: dict[str, Any]) -> list[str]:
    """What is wrong with the CLIP model and tag a job names (open_clip's names, read without
    importing it: :mod:`evalhub.evaluation.clip_names`); a known tag is stored as open_clip
    spells it, so that the same weights always get the same backbone id."""
    if "clip_model" not in merged and "clip_pretrained" not in merged:
        return []
    model = merged.get("clip_model", DEFAULT_CLIP_MODEL)
    if problem := clip_model_problem(model):
        return [problem]
    if problem := clip_pretrained_problem(model, merged.get("clip_pretrained")):
        return [problem]
    if "clip_pretrained" in merged and not is_weights_file(merged["clip_pretrained"]):
        merged["clip_pretrained"] = canonical_tag(merged["clip_pretrained"])
    return []


def job_options(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored job's options over today's defaults (jobs stored before an option existed)."""
    return {**DEFAULT_OPTIONS, **stored}


class MetricNotComputed(Exception):
    """One metric of a job cannot be computed from its input; the message says why.

    The job's other metrics are still stored (status ``partial``).
    """


@dataclass(frozen=True)
class Provenance:
    """What makes a value reproducible: the fields of :class:`metrics.weights.BackboneInfo`,
    stored on every metric row and in a shard's payload (as a JSON object)."""

    backbone_id: str
    weights_sha256: str
    calibrated: bool
    library_versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Provenance:
        return cls(backbone_id=data["backbone_id"], weights_sha256=data["weights_sha256"],
                   calibrated=bool(data["calibrated"]),
                   library_versions=dict(data.get("library_versions") or {}))

    def as_fields(self) -> dict[str, Any]:
        """Keyword arguments for a metric model's provenance fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MetricComputed:
    """One run-level value from the finalize step, before it is stored.

    ``n_images`` counts the run's images the value describes; ``std`` is set where the
    metric has a spread (KID over its subsets); ``details`` is stored with the row as JSON.
    """

    value: float
    n_images: int
    std: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
