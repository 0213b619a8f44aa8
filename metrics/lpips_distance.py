"""LPIPS perceptual distance (Zhang et al. 2018) via the ``lpips`` package, net="alex", v0.1.

    LPIPS(a, b) = sum_l mean_{h,w} w_l . (f_l(a)_{hw} - f_l(b)_{hw})^2

where f_l are channel-normalised AlexNet activations of 5 layers and w_l the package's learned
non-negative linear weights. Inputs are uint8 RGB, mapped to [-1, 1] as lpips expects
(x / 127.5 - 1). Unitless; 0 for identical images, typically 0.1-0.7 for different ones.

* :meth:`LpipsScorer.pairwise_distance`: image i of A vs image i of B (same prompt and seed,
  two models): A-vs-B difference.
* :meth:`LpipsScorer.diversity`: mean LPIPS over all n(n-1)/2 unordered pairs of images of one
  prompt across seeds: intra-prompt diversity. Features are computed once per image and the
  pairs are formed from them, so n images cost n AlexNet passes instead of n(n-1).

Small images: AlexNet's fifth layer (conv5, after a stride-4 11x11 convolution and two 3x3
stride-2 max-pools) has no output below :data:`LPIPS_MIN_SIDE` = 31 px on the shorter side
(conv1: floor((s + 4 - 11) / 4) + 1, each pool: floor((s - 3) / 2) + 1; s = 30 gives 0).
Images smaller than that are upsampled (bilinear, aspect kept, shorter side to 31 px) before
the network sees them, so LPIPS of 16 px thumbnails is the LPIPS of their upsampled versions
(:func:`lpips_input_size`); larger images are never resized here.

Weights: the linear layers ship inside the ``lpips`` package; the AlexNet trunk is torchvision's
``alexnet-owt-7be5be79.pth`` in the torch hub cache, checked *before* lpips would download it.
Random mode (``weights="random"`` / EVALHUB_RANDOM_WEIGHTS=1): ``lpips.LPIPS(pnet_rand=True)``,
i.e. a randomly initialised trunk (seeded, forked RNG) with the package's linear layers (kept
because they are local and non-negative, which keeps distances >= 0).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch
from torch import Tensor

from metrics.weights import (
    BackboneInfo,
    alexnet_weights_path,
    file_sha256,
    library_versions,
    random_weights_requested,
)

#: The shortest side (px) AlexNet's five LPIPS layers accept (module docstring).
LPIPS_MIN_SIDE = 31


def lpips_input_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) LPIPS computes on for an image of that size: unchanged from
    :data:`LPIPS_MIN_SIDE` px on the shorter side, else scaled up (aspect kept, rounded) so
    that the shorter side is exactly that."""
    short = min(height, width)
    if short >= LPIPS_MIN_SIDE:
        return height, width
    scale = LPIPS_MIN_SIDE / short
    return (max(LPIPS_MIN_SIDE, round(height * scale)), max(LPIPS_MIN_SIDE, round(width * scale)))


def to_lpips_range(images: Tensor) -> Tensor:
    """uint8 (N,3,H,W) -> float32 in [-1, 1]."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"expected uint8 (N,3,H,W) images, got {images.dtype} {tuple(images.shape)}"
        )
    return images.to(torch.float32) / 127.5 - 1.0


class LpipsScorer:
    """LPIPS(alex, v0.1) on uint8 images. All images in one call must share one size; images
    under :data:`LPIPS_MIN_SIDE` px on the shorter side are upsampled to it."""

    def __init__(
        self,
        *,
        weights: str | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
        batch_size: int = 16,
    ) -> None:
        import lpips

        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.batch_size = batch_size
        use_random = random_weights_requested(weights)
        quiet = contextlib.ExitStack()
        quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))  # lpips prints on init
        # lpips calls torchvision's deprecated `pretrained=` API; the warning is not ours to fix.
        quiet.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        if use_random:
            with torch.random.fork_rng(devices=[]), quiet:
                torch.manual_seed(seed)
                model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
            sha, calibrated = f"random:{seed}", False
        else:
            path = alexnet_weights_path()  # raises WeightsMissingError before any download
            with quiet:
                model = lpips.LPIPS(net="alex", version="0.1", verbose=False)
            sha, calibrated = file_sha256(path), True
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.info = BackboneInfo(
            backbone_id="lpips:alex/v0.1" + ("" if calibrated else f"+random:{seed}"),
            weights_sha256=sha,
            calibrated=calibrated,
            library_versions=library_versions("lpips", "torchvision"),
        )

    def _features(self, images: Tensor) -> list[Tensor]:
        import lpips

        feats: list[list[Tensor]] = []
        with torch.inference_mode():
            for start in range(0, images.shape[0], self.batch_size):
                x = to_lpips_range(images[start : start + self.batch_size]).to(self.device)
                size = lpips_input_size(*x.shape[-2:])
                if size != tuple(x.shape[-2:]):  # too small for AlexNet: upsample
                    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear",
                                                        align_corners=False)
                outs = self.model.net.forward(self.model.scaling_layer(x))
                feats.append([lpips.normalize_tensor(o) for o in outs])
        return [torch.cat([f[k] for f in feats]) for k in range(len(feats[0]))]

    def _distance(self, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
        import lpips

        with torch.inference_mode():
            total = 0
            for k, lin in enumerate(self.model.lins):
                total = total + lpips.spatial_average(lin((fa[k] - fb[k]) ** 2), keepdim=False)
            return total.flatten()

    def features(self, images: Tensor) -> list[Tensor]:
        """Channel-normalised AlexNet activations (5 layers) of uint8 (N,3,H,W) images, for
        :meth:`feature_distance` (computing each image's features once, e.g. video frames)."""
        return self._features(images)

    def feature_distance(self, fa: list[Tensor], fb: list[Tensor]) -> np.ndarray:
        """LPIPS between row-aligned outputs of :meth:`features`; float64 (N,)."""
        return self._distance(fa, fb).double().cpu().numpy()

    def pairwise_distance(self, images_a: Tensor, images_b: Tensor) -> np.ndarray:
        """LPIPS(a_i, b_i) for aligned uint8 (N,3,H,W) batches; float64 (N,)."""
        if images_a.shape != images_b.shape:
            raise ValueError(
                f"image batches must have equal shapes, got {tuple(images_a.shape)} and "
                f"{tuple(images_b.shape)} (resize to a common size first)"
            )
        if images_a.shape[0] == 0:
            raise ValueError("no image pairs given")
        out = []
        for start in range(0, images_a.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            out.append(self._distance(self._features(images_a[sl]), self._features(images_b[sl])))
        return torch.cat(out).double().cpu().numpy()

    def pair_matrix(self, images: Tensor) -> np.ndarray:
        """Symmetric (n, n) matrix of LPIPS between all images of one set (zero diagonal)."""
        n = images.shape[0]
        feats = self._features(images)
        mat = np.zeros((n, n))
        ii, jj = np.triu_indices(n, k=1)
        for start in range(0, len(ii), self.batch_size * 4):
            i = torch.as_tensor(ii[start : start + self.batch_size * 4], device=self.device)
            j = torch.as_tensor(jj[start : start + self.batch_size * 4], device=self.device)
            d = self._distance([f[i] for f in feats], [f[j] for f in feats]).double().cpu().numpy()
            mat[i.cpu().numpy(), j.cpu().numpy()] = d
        return mat + mat.T

    def diversity(self, images: Tensor) -> float:
        """Mean LPIPS over all unordered pairs of images (one prompt, several seeds)."""
        n = images.shape[0]
        if n < 2:
            raise ValueError(f"diversity needs at least 2 images of the prompt, got {n}")
        mat = self.pair_matrix(images)
        return float(mat[np.triu_indices(n, k=1)].mean())
