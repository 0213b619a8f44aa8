"""FVD's I3D: same network and numbers as cd-fvd on the same weights, random weights that do not
collapse, the weights policy, and FVD against cd-fvd's Fréchet implementations.

Reference: cd-fvd 0.1.1 (``cdfvd``, songweige/content-debiased-fvd): its ``InceptionI3d`` (the
piergiaj/pytorch-i3d definition it runs for ``cdfvd(model="i3d")``), its ``preprocess_i3d``, its
``frechet_distance`` (TATS / tf-gan: SVD square roots, torch) and its ``compute_fvd_from_stats``
(``scipy.linalg.sqrtm``, biased covariances: see the full-rank test). Clips are 9 frames (the
shortest I3D accepts) to keep CPU time low; the network is the same at 16.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from cdfvd.fvd import cdfvd as CdFvd
from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d, MaxPool3dSamePadding
from cdfvd.third_party.i3d.utils import frechet_distance as cdfvd_frechet_distance
from cdfvd.third_party.i3d.utils import preprocess_i3d
from cdfvd.utils.metric_utils import FeatureStats

from metrics.gaussian import GaussianStats, InsufficientSamplesError, frechet_distance
from metrics.i3d import (
    I3D,
    I3DFeatureExtractor,
    MaxPool3dSame,
    _calibration_clips,
    preprocess_clip,
    stack_clips,
)
from metrics.video_frames import FrameSampling, VideoDecodeError, read_frames, write_test_video
from metrics.video_metrics import fvd, fvd_from_stats
from metrics.weights import BackboneInfo, WeightsMissingError
from tests.metrics.conftest import moving_pattern

FRAMES = 9


@pytest.fixture(scope="module")
def i3d_random():
    return I3DFeatureExtractor("random", clip_frames=FRAMES, device="cpu")


@pytest.fixture(scope="module")
def video_sets(tmp_path_factory):
    """Two reference clips (slow drifting patterns) and two generated ones (fast, flashing)."""
    d = tmp_path_factory.mktemp("fvd")
    reference = [
        write_test_video(d / f"ref{i}.mp4", moving_pattern(FRAMES + 3, size=64, seed=i))
        for i in range(2)
    ]
    generated = []
    for i in range(2):
        frames = moving_pattern(FRAMES + 3, size=64, speed=6.0, seed=10 + i)
        frames[1::2] = frames[1::2] // 3
        generated.append(write_test_video(d / f"gen{i}.mp4", frames))
    return reference, generated


@pytest.fixture(scope="module")
def cdfvd_reference(i3d_random):
    """cd-fvd's own I3D class holding the same (random) weights as ``i3d_random.net``."""
    net = InceptionI3d(400, in_channels=3)
    net.load_state_dict(i3d_random.net.state_dict())
    return net.eval()


@pytest.fixture(scope="module")
def features(i3d_random, cdfvd_reference, video_sets):
    """(ours, cd-fvd's) (4, 400) features of the four clips: ours streamed from the files by
    I3DFeatureExtractor; cd-fvd's from the same decoded frames through its preprocess_i3d and
    InceptionI3d."""
    reference, generated = video_sets
    ours = i3d_random.extract_sources(reference + generated)
    clips = np.stack([
        read_frames(p, sampling=FrameSampling(every=1, limit=FRAMES)).frames.permute(0, 2, 3, 1)
        .numpy() for p in reference + generated
    ])  # (4, T, H, W, C) uint8, cd-fvd's input layout
    with torch.no_grad():
        theirs = cdfvd_reference(preprocess_i3d(clips)).numpy()
    return ours, theirs


def test_our_preprocessing_is_cd_fvds():
    frames = torch.from_numpy(moving_pattern(FRAMES, size=80, seed=4)).permute(0, 3, 1, 2)
    ours = preprocess_clip(frames)
    theirs = preprocess_i3d(frames.permute(0, 2, 3, 1).numpy()[None])[0]
    assert ours.shape == (3, FRAMES, 224, 224)
    assert torch.equal(ours, theirs)


def test_our_preprocessing_is_channels_last_whatever_the_frames_layout():
    frames = torch.from_numpy(moving_pattern(FRAMES, size=80, seed=5))  # (T,H,W,3)
    planar = preprocess_clip(frames.permute(0, 3, 1, 2).contiguous())
    interleaved = preprocess_clip(frames.permute(0, 3, 1, 2))  # the decoder's layout, no copy
    assert torch.equal(planar, interleaved)
    clips = stack_clips([planar, interleaved])
    assert clips.shape == (2, 3, FRAMES, 224, 224)
    assert clips.is_contiguous(memory_format=torch.channels_last_3d)  # what the network runs


@pytest.mark.parametrize(
    ("kernel", "stride", "shape"),
    [
        ((1, 3, 3), (1, 2, 2), (2, 5, 4, 29, 30)),  # MaxPool3d_2a/3a: padding behind only
        ((3, 3, 3), (1, 1, 1), (1, 6, 5, 7, 8)),  # inside Mixed: padding on both sides
        ((3, 3, 3), (2, 2, 2), (1, 4, 9, 15, 14)),  # MaxPool3d_4a, odd and even sizes
        ((2, 2, 2), (2, 2, 2), (1, 3, 4, 14, 14)),  # MaxPool3d_5a: no padding
    ],
)
def test_max_pooling_leaves_the_padding_out_with_cd_fvds_values(kernel, stride, shape):
    # I3D pools ReLU outputs (>= 0): the zeros cd-fvd pads with never win a maximum, so ours
    # does not materialise them and gets exactly its values, in either memory layout.
    x = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    x[x < 0.3] = 0  # ReLU-like: many exact zeros
    theirs = MaxPool3dSamePadding(kernel_size=kernel, stride=stride, padding=0)(x)
    assert torch.equal(MaxPool3dSame(kernel, stride)(x), theirs)
    cl = x.contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(MaxPool3dSame(kernel, stride)(cl), theirs)


def test_the_network_has_cd_fvds_parameters_and_computes_its_features(features, i3d_random):
    # Same parameter names and shapes: the same weights file loads into both.
    reference = InceptionI3d(400, in_channels=3).state_dict()
    ours = I3D().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}
    # Same features (ours with BatchNorm folded, streamed from the files) to float32 rounding.
    mine, theirs = features
    assert mine.shape == theirs.shape == (4, 400)
    scale = np.abs(theirs).max()
    assert np.abs(mine - theirs).max() / scale < 1e-4


def test_random_weights_give_distinct_varied_features(features):
    f = torch.from_numpy(features[0]).double()
    norms = f.norm(dim=1)
    dists = torch.cdist(f, f)[~torch.eye(4, dtype=torch.bool)]
    assert dists.min() > 0.05 * norms.mean()  # every clip differs from every other one
    rel_std = f.std(0) / f.mean(0).abs().clamp(min=1e-6)
    assert (rel_std > 0.05).float().mean() > 0.9  # most of the 400 dimensions vary
    s = torch.linalg.svdvals(f - f.mean(0))
    assert int((s > 1e-4 * s[0]).sum()) == 3  # full rank for 4 clips


def test_default_init_collapses_which_is_why_random_weights_are_calibrated():
    # PyTorch's default init with BatchNorm statistics (0, 1): Mixed_5c activations of two
    # very different clips are all but identical (and tiny), so FVD would be ~0 for anything.
    net = I3D().eval()
    clips = _calibration_clips(seed=5, n=2, frames=FRAMES, size=64)
    with torch.no_grad():
        out = net.body(clips).flatten(1).double()
    assert out.abs().max() < 1e-2
    assert (out[0] - out[1]).norm() < 1e-3 * (clips[0] - clips[1]).norm()


def test_fvd_agrees_with_cd_fvds_frechet_distance_on_its_own_features(
        features, i3d_random, video_sets):
    # End to end: our FVD from the files (decode, I3D, Gaussian fit, Fréchet distance) against
    # cd-fvd's I3D features of the same frames and its TATS/tf-gan frechet_distance (float64).
    # Two clips per set: rank-deficient covariances, so allow_rank_deficient (the value is
    # well defined, only not comparable with published FVDs).
    reference, generated = video_sets
    ours = fvd(i3d_random, reference, generated, allow_rank_deficient=True)
    theirs = torch.from_numpy(features[1]).double()
    expected = float(cdfvd_frechet_distance(theirs[:2], theirs[2:]))
    assert expected > 1.0
    assert ours.fvd == pytest.approx(expected, rel=1e-3)
    assert (ours.n_reference, ours.n_generated, ours.rank_deficient) == (2, 2, True)
    assert ours.backbone == i3d_random.info
    assert ours.backbone.backbone_id == "i3d-kinetics400/logits/9f+random:0"
    assert ours.backbone.calibrated is False


def test_full_rank_frechet_distance_agrees_with_cd_fvds_two_implementations():
    # 450 synthetic 400-d features per set (I3D's logit dimension): full-rank covariances, which
    # scipy.linalg.sqrtm (cd-fvd's cdfvd.compute_fvd_from_stats) needs to be accurate.
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(400, 400)) / 20
    a = (rng.normal(size=(450, 400)) @ mix).astype(np.float32)
    b = (rng.normal(size=(450, 400)) @ (mix * 1.3) + 0.2).astype(np.float32)
    ours = fvd_from_stats(
        GaussianStats.from_features(a),
        GaussianStats.from_features(b),
        BackboneInfo("synthetic", "none", calibrated=False),
    )
    assert ours.rank_deficient is False

    # cd-fvd's TATS/tf-gan frechet_distance (unbiased covariances, SVD square roots).
    tats = float(cdfvd_frechet_distance(torch.from_numpy(a).double(), torch.from_numpy(b).double()))
    assert ours.fvd == pytest.approx(tats, rel=1e-3)

    # cd-fvd's class (scipy sqrtm) fits its Gaussians with the *biased* covariance (StyleGAN-V's
    # FeatureStats: divided by n, not n - 1), so its FVD is ours of covariances scaled by
    # (n - 1) / n: 0.2% lower at n = 450. Same arithmetic once the covariance convention is the
    # same; stated in metrics.video_metrics.
    real, fake = FeatureStats(capture_mean_cov=True), FeatureStats(capture_mean_cov=True)
    real.append(a)
    fake.append(b)
    biased = float(CdFvd.compute_fvd_from_stats(None, fake, real))
    assert biased == pytest.approx(ours.fvd, rel=5e-3) and biased < ours.fvd

    class Unbiased:
        def __init__(self, stats: FeatureStats) -> None:
            self.stats = stats

        def get_mean_cov(self):
            mean, cov = self.stats.get_mean_cov()
            n = self.stats.num_items
            return mean, cov * n / (n - 1)

    scipy_unbiased = float(CdFvd.compute_fvd_from_stats(None, Unbiased(fake), Unbiased(real)))
    assert ours.fvd == pytest.approx(scipy_unbiased, rel=1e-3)


def test_fvd_of_too_few_videos_is_refused_unless_allowed():
    stats = GaussianStats.from_features(np.random.default_rng(1).normal(size=(30, 400)))
    with pytest.raises(InsufficientSamplesError, match="401"):
        frechet_distance(stats, stats)


def test_missing_i3d_weights_fail_fast_with_the_file_and_both_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("EVALHUB_RANDOM_WEIGHTS", raising=False)
    with pytest.raises(WeightsMissingError) as err:
        I3DFeatureExtractor(device="cpu")
    message = str(err.value)
    assert "i3d_pretrained_400.pt" in message and str(tmp_path) in message
    assert "fetch_weights" in message and "EVALHUB_RANDOM_WEIGHTS=1" in message


def test_a_weights_file_is_loaded_hashed_and_flagged_calibrated(tmp_path, i3d_random):
    # The file a networked machine's fetch_weights would store, here holding random tensors.
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(i3d_random.net.state_dict(), path)
    loaded = I3DFeatureExtractor(path, clip_frames=16, device="cpu")
    assert loaded.info.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.info.calibrated is True
    assert loaded.info.backbone_id == "i3d-kinetics400/logits/16f"
    assert all(
        torch.equal(v, i3d_random.net.state_dict()[k]) for k, v in loaded.net.state_dict().items()
    )


def test_a_clip_shorter_than_the_extractor_needs_is_refused(tmp_path, i3d_random):
    short = write_test_video(tmp_path / "short.mp4", moving_pattern(5, size=32))
    with pytest.raises(VideoDecodeError, match="5 frames"):
        i3d_random.extract_sources([short])


def test_consecutive_clips_of_one_video_stream_through_the_same_network(tmp_path, i3d_random):
    # 20 frames, 9-frame clips: frames 0-8 and 9-17 (the 2-frame tail is dropped); the first
    # clip's features are those of the video's one clip in extract_sources.
    frames = moving_pattern(20, size=48, speed=3.0, seed=7)
    path = write_test_video(tmp_path / "twenty.mp4", frames)
    clips = i3d_random.extract_clips(path)
    assert clips.shape == (2, 400)
    first = i3d_random.extract_sources([path])
    assert np.abs(clips[0] - first[0]).max() <= 1e-5 * np.abs(first).max()
    assert np.abs(clips[1] - clips[0]).max() > 1e-3 * np.abs(first).max()  # another clip
