"""EvalHub metrics: pure-torch automatic metrics for text-to-image evaluation.

No Django here: the web side stores inputs/outputs and calls these functions.

* FID / KID on FID-InceptionV3 pool3 features (:mod:`metrics.inception`, :mod:`metrics.gaussian`,
  :mod:`metrics.kid`), numerically matching torchmetrics with the same weights;
* CLIP-score and CMMD on open_clip embeddings (:mod:`metrics.clip_score`, :mod:`metrics.cmmd`);
* LPIPS A-vs-B distance and intra-prompt diversity (:mod:`metrics.lpips_distance`);
* video: streaming PyAV frame decoding (:mod:`metrics.video_frames`), CLIP score over frames,
  temporal consistency, flicker and FVD (:mod:`metrics.video_metrics`) on the Kinetics-400 I3D
  (:mod:`metrics.i3d`; imported on demand, not by this package);
* threaded image decoding (:mod:`metrics.imageio`), a per-image feature cache interface
  (:mod:`metrics.feature_cache`) and the weights policy (:mod:`metrics.weights`: weights come
  from the libraries' own caches, missing files fail fast, ``EVALHUB_RANDOM_WEIGHTS=1`` gives
  deterministic uncalibrated backbones for tests).

Heavy backbones are imported lazily by their modules; importing this package imports torch,
numpy, PIL and torch-fidelity only.
"""

from metrics.clip_score import ClipEmbedder, ClipScoreResult, clip_score, clip_scores
from metrics.cmmd import cmmd
from metrics.feature_cache import (
    DirectoryFeatureCache,
    FeatureCache,
    FeatureExtractor,
    InMemoryFeatureCache,
    features_for,
)
from metrics.gaussian import (
    GaussianStats,
    InsufficientSamplesError,
    frechet_distance,
    trace_sqrt_product,
)
from metrics.imageio import ImageDecodeError, decode_image, decode_many, iter_decoded
from metrics.inception import InceptionFeatureExtractor, random_inception_state_dict
from metrics.kid import KIDResult, kernel_inception_distance
from metrics.lpips_distance import LpipsScorer
from metrics.weights import (
    BackboneInfo,
    WeightsFetchError,
    WeightsMissingError,
    fetch_all_weights,
    random_weights_enabled,
)

__all__ = [
    "BackboneInfo",
    "ClipEmbedder",
    "ClipScoreResult",
    "DirectoryFeatureCache",
    "FeatureCache",
    "FeatureExtractor",
    "GaussianStats",
    "ImageDecodeError",
    "InMemoryFeatureCache",
    "InceptionFeatureExtractor",
    "InsufficientSamplesError",
    "KIDResult",
    "LpipsScorer",
    "WeightsFetchError",
    "WeightsMissingError",
    "clip_score",
    "clip_scores",
    "cmmd",
    "decode_image",
    "decode_many",
    "features_for",
    "fetch_all_weights",
    "frechet_distance",
    "iter_decoded",
    "kernel_inception_distance",
    "random_inception_state_dict",
    "random_weights_enabled",
    "trace_sqrt_product",
]
