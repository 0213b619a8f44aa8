"""Video metrics on streamed frames: CLIP score over frames, temporal consistency, flicker, FVD.

Frames come from :func:`metrics.video_frames.iter_frame_batches` (one decoder pass per video,
one batch of frames in memory at a time). Every result carries the backbone's
:class:`~metrics.weights.BackboneInfo` (id, weights sha256, calibrated flag) and the frame
sampling it was computed with.

With v_f the L2-normalised CLIP image embedding of sampled frame f (F sampled frames, in clip
order) and t the prompt's text embedding:

* CLIP score over frames (0..100): ``mean_f 100 max(cos(v_f, t), 0)``, the image CLIP-score
  (:mod:`metrics.clip_score`) averaged over frames;
* temporal consistency (cosine, -1..1, 1 = consecutive sampled frames embed identically):
  ``mean_{f<F} cos(v_f, v_{f+1})``; needs F >= 2;
* flicker (LPIPS units, 0 = no change): ``mean_{f<F} LPIPS(x_f, x_{f+1})`` over consecutive
  sampled frames x_f (default every frame, shorter side 256 px), :mod:`metrics.lpips_distance`;
* FVD (squared I3D-logit units): the Fréchet distance (:func:`metrics.gaussian.frechet_distance`)
  between Gaussian fits of the I3D features (:mod:`metrics.i3d`) of a reference set and a
  generated set of videos, one clip (first 16 frames) per video. Covariances are unbiased
  (divided by n - 1) as in FID, pytorch-fid and cd-fvd's ``frechet_distance`` (TATS); cd-fvd's
  ``cdfvd`` class (StyleGAN-V's ``FeatureStats``) divides by n, which gives FVDs lower by
  O(1/n) (0.2% at 450 videos per set; the tests show the two agree once the convention is
  the same).

CLIP frames are resized in libswscale while converting (bicubic, shorter side to the model's
input size), then centre-cropped and normalised with the model's mean/std in torch; open_clip's
own transform does the same resize with PIL's antialiased bicubic (the tests bound the
difference). Models whose preprocessing is not "shortest side + centre crop" go through
open_clip's transform frame by frame instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from metrics.clip_score import ClipEmbedder, clip_scores
from metrics.gaussian import GaussianStats, frechet_distance
from metrics.i3d import I3DFeatureExtractor
from metrics.lpips_distance import LpipsScorer
from metrics.video_frames import (
    FrameSampling,
    VideoSource,
    iter_frame_batches,
    map_in_streams,
    stream_batch_size,
)
from metrics.weights import BackboneInfo

#: Default CLIP frame sampling: 16 frames evenly spaced over the clip.
CLIP_SAMPLING = FrameSampling(count=16)
#: Default flicker sampling: every frame (flicker is a frame-to-frame effect).
FLICKER_SAMPLING = FrameSampling(every=1)
FLICKER_SHORT_SIDE = 256


@dataclass(frozen=True)
class VideoClipResult:
    """CLIP score over frames (0..100) and temporal consistency (cosine; None with one frame)."""

    clip_score: float
    temporal_consistency: float | None
    per_frame_score: np.ndarray
    consecutive_cosine: np.ndarray
    frame_indices: list[int]
    sampling: str
    backbone: BackboneInfo


@dataclass(frozen=True)
class FlickerResult:
    """Mean LPIPS between consecutive sampled frames, and each step's value."""

    flicker: float
    per_step: np.ndarray
    frame_indices: list[int]
    sampling: str
    short_side: int | None
    backbone: BackboneInfo


@dataclass(frozen=True)
class FvdResult:
    """FVD between a reference and a generated set (squared feature units)."""

    fvd: float
    n_reference: int
    n_generated: int
    rank_deficient: bool
    backbone: BackboneInfo


class VideoClipScorer:
    """CLIP embeddings of sampled video frames, batched; CLIP score and temporal consistency."""

    def __init__(
        self,
        embedder: ClipEmbedder,
        *,
        sampling: FrameSampling = CLIP_SAMPLING,
        batch_size: int = 16,
    ) -> None:
        self.embedder, self.sampling, self.batch_size = embedder, sampling, batch_size
        cfg = getattr(embedder.model.visual, "preprocess_cfg", None) or {}
        size = tuple(cfg.get("size", ()))
        shortest = cfg.get("resize_mode", "shortest") == "shortest"
        self.fast = shortest and len(size) == 2 and size[0] == size[1]
        if self.fast:
            self.size = int(size[0])
            self.mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1)
            self.std = torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1)

    @property
    def backbone(self) -> BackboneInfo:
        return self.embedder.info

    def preprocess(self, frames: Tensor) -> Tensor:
        """uint8 (B,3,H,W) frames whose shorter side is ``size`` -> normalised (B,3,size,size)."""
        h, w = frames.shape[-2:]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        x = frames[..., top : top + self.size, left : left + self.size].to(torch.float32) / 255
        return (x - self.mean) / self.std

    def _embed(self, frames: Tensor) -> np.ndarray:
        if not self.fast:
            return self.embedder.image_embeddings(list(frames.unbind(0)))
        x = self.preprocess(frames).to(self.embedder.device)
        with torch.inference_mode():
            emb = self.embedder.model.encode_image(x).float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    def frame_embeddings(self, source: VideoSource) -> tuple[np.ndarray, list[int]]:
        """(F, d) L2-normalised embeddings of the sampled frames, and their frame indices.

        Decoding runs in the calling thread; on CPU the embeddings are computed in
        :func:`~metrics.video_frames.map_in_streams` streams.
        """
        indices: list[int] = []
        # Sized here, not in the generator: its body first runs inside map_in_streams, after the
        # calling thread was set to one intra-op thread, where cpu_streams() would see one
        # stream and hand each stream the whole batch (16 sampled frames: one busy core).
        batch_size = stream_batch_size(self.batch_size, self.embedder.device)

        def batches() -> Iterator[Tensor]:
            for batch in iter_frame_batches(
                source,
                sampling=self.sampling,
                short_side=self.size if self.fast else None,
                interpolation="BICUBIC",
                batch_size=batch_size,
            ):
                indices.extend(batch.indices)
                yield batch.frames

        embs = list(map_in_streams(self._embed, batches(), self.embedder.device))
        return np.concatenate(embs), indices

    def score(self, source: VideoSource, prompt: str) -> VideoClipResult:
        """CLIP score of the video's sampled frames against ``prompt``, and their consistency."""
        emb, indices = self.frame_embeddings(source)
        text = self.embedder.text_embeddings([prompt])
        return clip_result(emb, text[0], indices, self.sampling.describe(), self.backbone)


def clip_result(
    frame_emb: np.ndarray,
    text_emb: np.ndarray,
    indices: list[int],
    sampling: str,
    backbone: BackboneInfo,
) -> VideoClipResult:
    """The formulas of the module docstring on (F,d) frame and (d,) text embeddings."""
    per_frame = clip_scores(frame_emb, np.broadcast_to(text_emb, frame_emb.shape))
    consecutive = consecutive_cosine(frame_emb)
    return VideoClipResult(
        clip_score=float(per_frame.mean()),
        temporal_consistency=float(consecutive.mean()) if len(consecutive) else None,
        per_frame_score=per_frame,
        consecutive_cosine=consecutive,
        frame_indices=indices,
        sampling=sampling,
        backbone=backbone,
    )


def consecutive_cosine(emb: np.ndarray) -> np.ndarray:
    """cos(e_f, e_{f+1}) for f = 0..F-2 of (F,d) embeddings; float64 (F-1,)."""
    e = np.asarray(emb, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return (e[:-1] * e[1:]).sum(1)


def video_flicker(
    scorer: LpipsScorer,
    source: VideoSource,
    *,
    sampling: FrameSampling = FLICKER_SAMPLING,
    short_side: int | None = FLICKER_SHORT_SIDE,
    batch_size: int = 16,
) -> FlickerResult:
    """Mean LPIPS between consecutive sampled frames; each frame's features computed once.

    Needs at least 2 sampled frames (ValueError otherwise).
    """
    steps: list[np.ndarray] = []
    indices: list[int] = []
    previous: list[Tensor] | None = None
    for batch in iter_frame_batches(
        source, sampling=sampling, short_side=short_side, batch_size=batch_size
    ):
        feats = scorer.features(batch.frames)
        if previous is not None:  # the step across the batch boundary
            steps.append(scorer.feature_distance(previous, [f[:1] for f in feats]))
        if batch.frames.shape[0] > 1:
            steps.append(scorer.feature_distance([f[:-1] for f in feats], [f[1:] for f in feats]))
        previous = [f[-1:] for f in feats]
        indices.extend(batch.indices)
    if len(indices) < 2:
        raise ValueError(f"flicker needs at least 2 sampled frames, got {len(indices)}")
    per_step = np.concatenate(steps)
    return FlickerResult(
        flicker=float(per_step.mean()),
        per_step=per_step,
        frame_indices=indices,
        sampling=sampling.describe(),
        short_side=short_side,
        backbone=scorer.info,
    )


def video_feature_stats(
    extractor: I3DFeatureExtractor, sources: Iterable[VideoSource]
) -> GaussianStats:
    """Gaussian statistics (n, sum, sum of outer products; mergeable across shards) of the I3D
    features of ``sources``, one clip per video."""
    return GaussianStats.from_features(extractor.extract_sources(list(sources)))


def fvd_from_stats(
    reference: GaussianStats,
    generated: GaussianStats,
    backbone: BackboneInfo,
    *,
    allow_rank_deficient: bool = False,
) -> FvdResult:
    """FVD = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}) of two feature statistics.

    Fewer than d + 1 = 401 videos in a set (rank-deficient covariance) raises
    InsufficientSamplesError unless ``allow_rank_deficient``; the result then says so.
    """
    value = frechet_distance(
        reference, generated, allow_rank_deficient=allow_rank_deficient
    )
    return FvdResult(
        fvd=value,
        n_reference=reference.n,
        n_generated=generated.n,
        rank_deficient=min(reference.n, generated.n) <= reference.dim,
        backbone=backbone,
    )


def fvd(
    extractor: I3DFeatureExtractor,
    reference: Iterable[VideoSource],
    generated: Iterable[VideoSource],
    *,
    allow_rank_deficient: bool = False,
) -> FvdResult:
    """FVD between two sets of videos (files, bytes or file objects), one clip per video."""
    return fvd_from_stats(
        video_feature_stats(extractor, reference),
        video_feature_stats(extractor, generated),
        extractor.info,
        allow_rank_deficient=allow_rank_deficient,
    )
