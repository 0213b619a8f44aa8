"""What a metric job is: the metrics it can compute, its options, and the typed values its
steps hand each other.

No torch here: web processes (the API, ``manage.py compute_metrics``) validate jobs with it,
and the gpu side (:mod:`evalhub.evaluation.compute`) shares the same names.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalhub.core.errors import EvalHubError

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


@functools.cache
def clip_architectures() -> frozenset[str]:
    """open_clip's model names (its ``model_configs/*.json``), read from the installed package
    without importing it (it imports torch, which web processes do not); empty when open_clip
    is not installed here, and the worker then checks the name."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    return frozenset(path.stem for location in spec.submodule_search_locations
                     for path in (Path(location) / "model_configs").glob("*.json"))


def _clip_model_problem(name: str) -> str | None:
    known = clip_architectures()
    if not name.strip():
        return "clip_model must not be empty"
    if name.startswith("hf-hub:"):
        return None if name.removeprefix("hf-hub:").strip() else (
            "clip_model 'hf-hub:' names no repository: write hf-hub:<organisation>/<model>")
    if not known or name in known:
        return None
    # open_clip's names are case-sensitive: the same letters in another case first.
    near = sorted(n for n in known if n.lower() == name.lower()) or sorted(
        n for n in known if n.lower().startswith(name.lower()[:5]))[:5]
    return (f"clip_model {name!r} is not an open_clip architecture (did you mean "
            f"{', '.join(near or ['ViT-B-32', 'ViT-L-14', 'ViT-H-14'])}? or an "
            "hf-hub:<repo> name)")


def normalize_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Options merged over the defaults, with types and ranges checked."""
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
    merged = {**DEFAULT_OPTIONS, **options}
    merged["fid_feature"] = str(merged["fid_feature"])
    if not problems:
        if merged["fid_feature"] not in ("64", "192", "768", "2048"):
            problems.append("fid_feature must be one of 64, 192, 768, 2048")
        if merged["cmmd_estimator"] not in ("reference", "unbiased"):
            problems.append("cmmd_estimator must be 'reference' or 'unbiased'")
        for key, (low, high) in OPTION_RANGES.items():
            if not low <= merged[key] <= high:
                problems.append(f"{key} must be between {low:,} and {high:,}")
        kernel_work = merged["kid_subsets"] * merged["kid_subset_size"] ** 2
        if not problems and kernel_work > MAX_KID_KERNEL_WORK:
            problems.append(
                f"kid_subsets x kid_subset_size^2 is {kernel_work:,}: at most "
                f"{MAX_KID_KERNEL_WORK:,} (100 times the defaults' kernel work), as the "
                "finalize step computes every subset's kernel matrices")
        if not 2 <= merged.get("video_frames", 16) <= 1000:
            problems.append("video_frames must be between 2 and 1000")
        if not 16 <= merged.get("flicker_short_side", 256) <= 4096:
            problems.append("flicker_short_side must be between 16 and 4096 (pixels)")
        if not 9 <= merged.get("fvd_clip_frames", 16) <= 128:
            problems.append("fvd_clip_frames must be between 9 (I3D's shortest clip) and 128")
        if "clip_model" in merged and (problem := _clip_model_problem(merged["clip_model"])):
            problems.append(problem)
        if "clip_pretrained" in merged and not merged["clip_pretrained"].strip():
            problems.append("clip_pretrained must not be empty (an open_clip tag or a file path)")
    if problems:
        raise EvalHubError("Invalid metric job options.", details=problems)
    return merged


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
