"""The FID InceptionV3 feature extractor (pool3, 2048-d), as torchmetrics and torch-fidelity run it.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (the class torchmetrics'
``FrechetInceptionDistance`` wraps as ``NoTrainInceptionV3``), loaded with the same weights
file, so with real weights the features, and hence FID/KID, agree with published numbers.

Preprocessing, per image: uint8 RGB -> float32 -> bilinear resize to 299x299 -> ``(x - 128) / 128``.
Two resize modes exist and they give measurably different FIDs, so the mode is part of the
backbone id:

* ``antialias=True`` (**default**): ``F.interpolate(mode="bilinear", antialias=True)``, the
  default of torchmetrics >= 1.8. Chosen because it is what current torchmetrics users get and
  because downscaling large generated images (512-1024 px) without antialiasing aliases badly.
* ``antialias=False``: torch-fidelity's TF1-compatible bilinear (no antialiasing), i.e. the
  legacy TF FID / pytorch-fid / torch-fidelity behaviour. Use it to compare with older papers.

Speed: batched ``torch.inference_mode()`` inference in channels_last, with every BatchNorm
folded into its convolution (:func:`fold_batchnorm`), on CUDA when present. On CPU,
:meth:`InceptionFeatureExtractor.extract_loaders` runs several independent *streams* (threads
that each decode, resize and infer their own small batches with few intra-op threads) instead of
one batch spread over all cores: see :func:`cpu_streams` for why.

``exact=True`` (default) keeps every op in IEEE float32 (TF32 disabled): features then agree
with torchmetrics to float32 rounding (2.5e-5 relative on the random weights, where each
float32 variant, torchmetrics' own included, is 1.5-2.1e-5 from a float64 forward pass; the
tests hold features to 1e-4, FID/KID to 1e-3). ``exact=False`` on CUDA enables TF32
(``fast_dtype="tf32"``, features within ~1e-3 relative) or bfloat16 autocast
(``fast_dtype="bf16"``, ~1e-2 relative, FID typically within 0.5%); on CPU it changes nothing.

Random weights (``weights="random"`` or ``EVALHUB_RANDOM_WEIGHTS=1``): default PyTorch init plus
BatchNorm running stats of mean 0 / var 1 makes the 2048 pool features numerically identical for
all images (activations shrink ~x0.6 per layer over ~20 layers, see the tests). We therefore
re-draw every conv kernel from N(0, 2/fan_in) (He init, variance-preserving through ReLU) from a
seeded generator, then set every BatchNorm's running mean/var to the statistics of a fixed,
seeded synthetic calibration batch (cumulative average, computed on CPU in float32). Features
then vary across images and have high effective rank, but they are *uncalibrated*.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from metrics.weights import (
    BackboneInfo,
    RandomWeightsRecipe,
    calibrate_batchnorm,
    inception_weights_path,
    library_versions,
    load_backbone_weights,
)

INPUT_SIZE = 299
FEATURE_LAYERS: dict[str, int] = {"64": 64, "192": 192, "768": 768, "2048": 2048}
DEFAULT_SEED = 0

T = TypeVar("T")
R = TypeVar("R")


class _TorchFidelityInception(FeatureExtractorInceptionV3):
    """torch-fidelity's InceptionV3 that can also be built without weights.

    torch-fidelity's constructor always loads a state dict; given an empty one (our
    architecture-only construction) we skip the load and install weights afterwards.
    """

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        if not state_dict:
            return None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def _empty_state_dict_file() -> io.BytesIO:
    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    return buf


def build_inception(state_dict: dict[str, Tensor] | None = None) -> FeatureExtractorInceptionV3:
    """torch-fidelity's InceptionV3 module (eval, no grad) holding ``state_dict``.

    With ``state_dict=None`` the module keeps PyTorch's default initialisation. Otherwise the
    module is built without initialising anything and holds the given tensors themselves (no
    copy: extractor variants in a process share one set of weights), so it must not be trained.
    """
    if state_dict is None:
        net = _TorchFidelityInception("inception-v3-compat", ["2048"], _empty_state_dict_file())
    else:
        with torch.device("meta"):  # skips the default init of 27M parameters (~0.5 s of CPU)
            net = _TorchFidelityInception("inception-v3-compat", ["2048"], _empty_state_dict_file())
        net.load_state_dict(state_dict, assign=True)
    return net.eval().requires_grad_(False)


def state_dict_file(state_dict: dict[str, Tensor]) -> io.BytesIO:
    """An in-memory file for ``feature_extractor_weights_path=`` of torchmetrics/torch-fidelity.

    Lets torchmetrics' own ``FrechetInceptionDistance`` run on EvalHub's random weights.
    """
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return buf


def resize_to_inception(x: Tensor, antialias: bool = True) -> Tensor:
    """uint8/float (N,3,H,W) or (3,H,W) -> float32 in [0,255] at 299x299, torchmetrics' resize.

    Per image identical to what torchmetrics' ``NoTrainInceptionV3`` does inside ``forward``,
    so resizing images one by one (mixed sizes, worker threads) gives the same numbers.
    """
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    x = x.to(torch.float32)
    if x.shape[-2:] == (INPUT_SIZE, INPUT_SIZE):
        out = x  # both resizes are the identity at scale 1; skip the work
    elif antialias:
        out = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True
        )
    else:
        out = interpolate_bilinear_2d_like_tensorflow1x(
            x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False
        )
    return out[0] if squeeze else out


def _calibration_batch(seed: int, n: int = 24, size: int = 128) -> Tensor:
    """Deterministic uint8 images with natural-ish statistics: smooth random colour fields at
    several scales plus gradients and edges. Used only to set BatchNorm statistics."""
    g = torch.Generator().manual_seed(seed + 1)
    imgs = []
    for i in range(n):
        coarse = 2 ** (1 + i % 5)  # 2..32 cells: blobs to fine texture
        field = torch.rand(1, 3, coarse, coarse, generator=g)
        img = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False)[0]
        ramp = torch.linspace(0, 1, size).view(1, 1, size)
        img = 0.7 * img + 0.3 * (ramp if i % 2 else ramp.transpose(1, 2)) * torch.rand(
            3, 1, 1, generator=g
        )
        if i % 3 == 0:  # hard edges
            img = torch.where(img > img.mean(), img * 1.3, img * 0.6)
        imgs.append((img.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.stack(imgs)


def random_inception_state_dict(seed: int = DEFAULT_SEED) -> dict[str, Tensor]:
    """Deterministic random InceptionV3 weights whose pool features do not collapse.

    Conv kernels ~ N(0, 2/fan_in) from ``torch.Generator().manual_seed(seed)``; fc ~ N(0, 1/2048);
    BatchNorm statistics from :func:`_calibration_batch` (antialiased resize) by
    :func:`metrics.weights.calibrate_batchnorm`, one float32 CPU pass.
    """
    net = build_inception()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels // mod.groups * math.prod(mod.kernel_size)
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(2 / fan_in))
            elif isinstance(mod, nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / math.sqrt(2048))
                mod.bias.zero_()
    x = resize_to_inception(_calibration_batch(seed), antialias=True)
    calibrate_batchnorm(net, lambda: _forward_body(net, (x - 128) / 128, "2048"), momentum=0.1)
    return {k: v.clone() for k, v in net.state_dict().items()}


def _pool(x: Tensor) -> Tensor:
    return F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)


def _forward_body(net: FeatureExtractorInceptionV3, x: Tensor, feature: str) -> Tensor:
    """torch-fidelity's forward after its resize/normalise step, stopping at ``feature``."""
    x = net.Conv2d_1a_3x3(x)
    x = net.Conv2d_2a_3x3(x)
    x = net.Conv2d_2b_3x3(x)
    x = net.MaxPool_1(x)
    if feature == "64":
        return _pool(x)
    x = net.Conv2d_3b_1x1(x)
    x = net.Conv2d_4a_3x3(x)
    x = net.MaxPool_2(x)
    if feature == "192":
        return _pool(x)
    for block in (
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
    ):
        x = getattr(net, block)(x)
    if feature == "768":
        return _pool(x)
    x = net.Mixed_7c(net.Mixed_7b(net.Mixed_7a(x)))
    return _pool(x)  # pool3: the 2048-d FID feature


def fold_batchnorm(net: FeatureExtractorInceptionV3) -> FeatureExtractorInceptionV3:
    """Folds each conv's eval-mode BatchNorm into the conv; returns ``net``, changed in place.

    Per output channel c, with BatchNorm scale g, shift b, running mean m and variance v,
    ``s_c = g_c / sqrt(v_c + eps)``, ``W'_c = W_c * s_c`` and ``b'_c = b_c - m_c * s_c`` (the
    conv has no bias: b is BatchNorm's), so ``conv'(x) = bn(conv(x))`` in real arithmetic and
    the BatchNorm becomes an identity. The new weights are new tensors: the tensors ``net`` held
    (possibly shared with other modules) are never written. In float32 the pool3 features then
    stay as close to a float64 forward pass as without folding (2.1e-5 against 2.0e-5 relative
    on the random weights, 16 images) and one pass over every activation is saved (~10% of CPU).
    """
    for mod in net.modules():
        conv, bn = getattr(mod, "conv", None), getattr(mod, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and conv.bias is None:
            with torch.no_grad():
                scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
                weight = conv.weight * scale.reshape(-1, 1, 1, 1)
                bias = bn.bias - bn.running_mean * scale
            conv.weight = nn.Parameter(weight, requires_grad=False)
            conv.bias = nn.Parameter(bias, requires_grad=False)
            mod.bn = nn.Identity()
    return net


#: At most this many CPU streams run at once (each holds its batch's activations, ~25 MB/image).
MAX_CPU_STREAMS = 4


@functools.lru_cache(maxsize=1)
def _openmp_backend() -> bool:
    # With OpenMP each thread has its own intra-op thread count; torch's native pool is shared.
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def cpu_streams(threads: int | None = None) -> tuple[int, int]:
    """(streams, intra-op threads per stream) for CPU inference on ``threads`` threads (default
    ``torch.get_num_threads()``): ``min(threads, MAX_CPU_STREAMS)`` streams, the threads
    shared among them.

    Why streams: one batch spread over all cores meets at an OpenMP barrier after every layer,
    so a core busy with something else (image decoding, another process on a shared machine)
    stalls all the others, and the waiting threads spin. Measured on the 2-core bench machine
    under load (load average 5-7): a 2-thread forward pass cost 243 ms of CPU per image, a
    1-thread one 109 ms. Independent streams never wait for each other, and each decodes and
    resizes its own images single-threaded (a 512 px antialiased resize: 1.9 ms of CPU on one
    thread, 6.8 ms on two).
    """
    total = max(1, threads or torch.get_num_threads())
    if not _openmp_backend():
        return 1, total
    streams = min(total, MAX_CPU_STREAMS)
    return streams, max(1, total // streams)


def _ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T], window: int
) -> Iterator[R]:
    """``map(fn, items)`` on ``pool``, in order, with at most ``window`` items in flight."""
    queue: deque[Future[R]] = deque()
    it = iter(items)
    for item in it:
        queue.append(pool.submit(fn, item))
        if len(queue) >= window:
            break
    while queue:
        result = queue.popleft().result()
        for item in it:
            queue.append(pool.submit(fn, item))
            break
        yield result


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def _precision(device: torch.device, exact: bool, fast_dtype: str) -> Iterator[None]:
    """IEEE float32 when exact; TF32 or bf16 autocast on CUDA otherwise. Restores global flags."""
    if device.type != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = (not exact) and fast_dtype == "tf32"
    # cuDNN allows TF32 convolutions by default; "exact" must switch that off explicitly.
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        if not exact and fast_dtype == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


#: The random weights (calibration costs ~10 s of CPU: it runs once per machine, the result is
#: kept on disk, and extractor variants (resize mode, layer) in a process share it).
RANDOM_RECIPE = RandomWeightsRecipe(
    name="inception-v3-fid",
    build=random_inception_state_dict,
    sources=(random_inception_state_dict, _calibration_batch, _forward_body,
             resize_to_inception, build_inception),
)  # fmt: skip


class InceptionFeatureExtractor(nn.Module):
    """FID InceptionV3 features for uint8 RGB images (N,3,H,W), any H,W.

    ``forward(images) -> (N, d) float32`` with d = 2048 for the default ``feature="2048"``
    (pool3). Also usable as ``FrechetInceptionDistance(feature=extractor)`` in torchmetrics
    (it exposes ``num_features``).

    Args:
        weights: ``None``/``"auto"`` (real weights from the torch hub cache, or random when
            ``EVALHUB_RANDOM_WEIGHTS=1``), ``"random"``, or a path to a weights file.
        antialias: resize mode, see module docstring (default True = torchmetrics >= 1.8).
        feature: ``"2048"`` (FID/KID) or an earlier pooled layer ``"64"``, ``"192"``, ``"768"``.
        device: defaults to CUDA when available.
        exact: float32 everywhere (default). False enables ``fast_dtype`` on CUDA.
        fast_dtype: ``"tf32"`` or ``"bf16"``, used only when ``exact=False`` on CUDA.
        seed: seed of the random weights.
        batch_size: images per forward pass in :meth:`extract`.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        antialias: bool = True,
        feature: str = "2048",
        device: str | torch.device | None = None,
        exact: bool = True,
        fast_dtype: Literal["tf32", "bf16"] = "tf32",
        seed: int = DEFAULT_SEED,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        if feature not in FEATURE_LAYERS:
            raise ValueError(f"feature must be one of {sorted(FEATURE_LAYERS)}, got {feature!r}")
        self.feature = feature
        self.num_features = FEATURE_LAYERS[feature]
        self.antialias = antialias
        self.exact = exact
        self.fast_dtype = fast_dtype
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else _default_device()

        loaded = load_backbone_weights(weights, recipe=RANDOM_RECIPE, seed=seed,
                                       default_path=inception_weights_path,
                                       weights_only=False)  # fmt: skip
        state_dict = loaded.state_dict
        #: The network with the weights as loaded (torch-fidelity's module; hand its
        #: ``state_dict()`` to torchmetrics to run the same weights there).
        self.net = build_inception(state_dict).to(self.device)
        #: What inference runs: the same weights with BatchNorm folded into the convolutions.
        self.folded = fold_batchnorm(build_inception(state_dict)).to(self.device)
        if self.device.type in ("cpu", "cuda"):
            # channels_last lets oneDNN/cuDNN pick their fastest conv kernels (CPU, one thread:
            # 174 -> 109 ms per image).
            self.folded = self.folded.to(memory_format=torch.channels_last)

        layer = "pool3" if feature == "2048" else f"pool{feature}"
        backbone_id = f"inception-v3-fid/{layer}"
        if not antialias:
            backbone_id += "+tf1resize"
        if loaded.random:
            backbone_id += f"+random:{seed}"
        self.info = BackboneInfo(
            backbone_id=backbone_id,
            weights_sha256=loaded.sha256,
            calibrated=loaded.calibrated,
            library_versions=library_versions("torch-fidelity", "torchmetrics"),
        )

    @property
    def backbone_id(self) -> str:
        return self.info.backbone_id

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        """Always stays in eval mode (BatchNorm must use its running statistics)."""
        return super().train(False)

    def preprocess(self, image: Tensor) -> Tensor:
        """One uint8 (3,H,W) image -> float32 (3,299,299) in [0,255]. Thread-safe, CPU."""
        return resize_to_inception(image, antialias=self.antialias)

    def features_from_resized(self, batch: Tensor) -> Tensor:
        """float32 (N,3,299,299) in [0,255] (output of :meth:`preprocess`) -> (N,d) float32."""
        with torch.inference_mode(), _precision(self.device, self.exact, self.fast_dtype):
            x = batch.to(self.device, non_blocking=True)
            x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)
            return _forward_body(self.folded, x, self.feature).float()

    def forward(self, images: Tensor) -> Tensor:
        """uint8 (N,3,H,W) RGB -> (N,d) float32 features (on the extractor's device)."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                "expected uint8 images of shape (N,3,H,W), "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[0] == 0:
            return torch.empty(0, self.num_features)
        if self.device.type == "cpu":
            return torch.from_numpy(self.extract(images.unbind(0)))
        with torch.inference_mode():
            resized = resize_to_inception(images.to(self.device), antialias=self.antialias)
        return self.features_from_resized(resized)

    def extract(self, images: Iterable[Tensor]) -> np.ndarray:
        """uint8 (3,H,W) images of any sizes -> (N,d) float32 numpy, in input order.

        Each image is resized on its own (so sizes may differ), then batched.
        """
        return self.extract_loaders([functools.partial(_identity, img) for img in images])

    def extract_sources(
        self, sources: Sequence[str | Path | bytes], num_threads: int | None = None
    ) -> np.ndarray:
        """Decode files/bytes and extract; -> (N,d) float32 (see :meth:`extract_loaders`)."""
        from metrics.imageio import _name, decode_image

        return self.extract_loaders(
            [functools.partial(decode_image, s, name=_name(s, i)) for i, s in enumerate(sources)],
            num_threads=num_threads,
        )

    def extract_loaders(
        self, loaders: Sequence[Callable[[], Tensor]], num_threads: int | None = None
    ) -> np.ndarray:
        """``loader()`` gives a uint8 (3,H,W) image (e.g. decodes a file); -> (N,d) float32 numpy,
        in input order. Each loader is called once, in a worker thread.

        * CPU: :func:`cpu_streams` streams; each takes the next ``ceil(batch_size / streams)``
          loaders (fewer when there are fewer than ``batch_size`` in all, so that every stream
          gets some), loads and resizes them and runs them through the network, with its own
          intra-op thread count (set with ``torch.set_num_threads`` in the stream's thread;
          the calling thread's count is restored when done). ``num_threads`` is unused.
        * CUDA: ``num_threads`` (default: one per core) threads load and resize while the
          device infers batches of ``batch_size``.
        """
        if len(loaders) == 0:
            return np.zeros((0, self.num_features), dtype=np.float32)
        if self.device.type != "cpu":
            from metrics.imageio import default_num_threads

            threads = num_threads or default_num_threads()
            with ThreadPoolExecutor(threads, thread_name_prefix="evalhub-decode") as pool:
                resized = _ordered_map(pool, self._load_resized, loaders, window=4 * threads)
                return self.extract_preprocessed(resized)

        streams, threads_per_stream = cpu_streams()
        # Batches of at most batch_size / streams; few images are shared evenly among streams.
        step = max(1, min(math.ceil(self.batch_size / streams), math.ceil(len(loaders) / streams)))
        chunks = [loaders[i : i + step] for i in range(0, len(loaders), step)]
        if streams == 1 or len(chunks) == 1:
            return np.concatenate([self._features_of_loaded(c) for c in chunks])
        caller_threads = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(
                streams,
                thread_name_prefix="evalhub-inception",
                initializer=torch.set_num_threads,
                initargs=(threads_per_stream,),
            ) as pool:
                return np.concatenate(
                    list(_ordered_map(pool, self._features_of_loaded, chunks, window=2 * streams))
                )
        finally:
            # set_num_threads in a stream also set the default that new threads start with.
            torch.set_num_threads(caller_threads)

    def _load_resized(self, loader: Callable[[], Tensor]) -> Tensor:
        return self.preprocess(loader())

    def _features_of_loaded(self, loaders: Sequence[Callable[[], Tensor]]) -> np.ndarray:
        batch = torch.stack([self._load_resized(load) for load in loaders])
        return self.features_from_resized(batch).cpu().numpy()

    def extract_preprocessed(self, resized: Iterable[Tensor]) -> np.ndarray:
        """Outputs of :meth:`preprocess` -> (N,d) float32 numpy, batched, in input order."""
        out: list[np.ndarray] = []
        pending: list[Tensor] = []
        for img in resized:
            pending.append(img)
            if len(pending) == self.batch_size:
                out.append(self.features_from_resized(torch.stack(pending)).cpu().numpy())
                pending = []
        if pending:
            out.append(self.features_from_resized(torch.stack(pending)).cpu().numpy())
        if not out:
            return np.zeros((0, self.num_features), dtype=np.float32)
        return np.concatenate(out)


def _identity(image: Tensor) -> Tensor:
    return image
