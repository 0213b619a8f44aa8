"""FID InceptionV3 extractor: agreement with torchmetrics, random weights that do not collapse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.kid import KernelInceptionDistance

from metrics.gaussian import GaussianStats, frechet_distance
from metrics.inception import (
    RANDOM_RECIPE,
    InceptionFeatureExtractor,
    _forward_body,
    build_inception,
    random_inception_state_dict,
    resize_to_inception,
    state_dict_file,
)
from metrics.kid import kernel_inception_distance
from metrics.weights import cached_random_weights, forget_random_weights
from tests.metrics.conftest import synthetic_images


def _effective_dim(features: torch.Tensor) -> float:
    """Participation ratio of the centred feature spectrum: (sum s^2)^2 / sum s^4."""
    s2 = torch.linalg.svdvals(features.double() - features.double().mean(0)) ** 2
    return float(s2.sum() ** 2 / (s2**2).sum())


def test_default_init_collapses_which_is_why_random_weights_are_recalibrated():
    # PyTorch's default init + BN stats (0, 1): activations shrink layer after layer, so pool3
    # features all but vanish and the distance between two very different image sets is ~0.
    net = build_inception()
    smooth = resize_to_inception(synthetic_images(3, size=32, seed=3, style="smooth"))
    stripes = resize_to_inception(synthetic_images(3, size=32, seed=3, style="stripes"))
    with torch.inference_mode():
        fa = _forward_body(net, (smooth - 128) / 128, "2048").double()
        fb = _forward_body(net, (stripes - 128) / 128, "2048").double()
    assert fa.abs().max() < 1e-4 and fb.abs().max() < 1e-4
    assert (fa.mean(0) - fb.mean(0)).square().sum() < 1e-10


def test_random_weights_give_varied_high_rank_features(pool3_features):
    f = torch.cat(pool3_features())  # 24 smooth images, then 24 striped ones
    assert f.shape == (48, 2048)
    assert torch.isfinite(f).all()
    # Every image differs from every other one by a non-trivial distance...
    dists = torch.cdist(f, f)[~torch.eye(48, dtype=torch.bool)]
    assert dists.min() > 0.05 * f.norm(dim=1).mean()
    # ...most feature dimensions vary across images...
    rel_std = f.std(0) / f.mean(0).abs().clamp(min=1e-6)
    assert (rel_std > 0.05).float().mean() > 0.9
    # ...and the spread is not along a single direction: full numerical rank, effective
    # dimension well above 1.
    s = torch.linalg.svdvals(f.double() - f.double().mean(0))
    assert int((s > 1e-4 * s[0]).sum()) == 47
    assert _effective_dim(f) > 1.5


def test_random_weights_are_deterministic_and_kept_on_disk_bit_for_bit(
        inception_random, images_a, tmp_path, monkeypatch):
    # Two independent constructions (calibration included) give bit-identical weights: one now,
    # one made earlier in this process or read from the machine's cache for the shared
    # extractor (with other global RNG state).
    fresh = random_inception_state_dict(0)
    shared = inception_random.net.state_dict()
    assert fresh.keys() == shared.keys()
    assert all(torch.equal(fresh[k], shared[k]) for k in fresh)
    assert fresh["Mixed_7c.branch_pool.bn.running_var"].std() > 0  # BN stats were calibrated

    # The calibrated weights go to disk once; an extractor built from the file gives the same
    # bytes as features, and its numbers stay flagged uncalibrated.
    monkeypatch.setenv("EVALHUB_CACHE_DIR", str(tmp_path))
    stored = cached_random_weights("inception-v3-fid", RANDOM_RECIPE.describe(0), lambda: fresh)
    assert stored is fresh and len(list(tmp_path.glob("random-weights/*.pt"))) == 1
    forget_random_weights()  # the next extractor reads the file just written
    try:
        from_disk = InceptionFeatureExtractor("random", device="cpu")
    finally:
        forget_random_weights()
    loaded = from_disk.net.state_dict()
    assert all(torch.equal(fresh[k], loaded[k]) for k in fresh)
    assert not from_disk.info.calibrated and from_disk.info.weights_sha256 == "random:0"
    assert from_disk.backbone_id == inception_random.backbone_id
    images = list(images_a[:3])
    assert from_disk.extract(images).tobytes() == inception_random.extract(images).tobytes()


def test_backbone_id_names_resize_mode_and_random_seed(inception_random, random_inception):
    legacy = random_inception(antialias=False)
    assert inception_random.info.backbone_id == "inception-v3-fid/pool3+random:0"
    assert legacy.info.backbone_id == "inception-v3-fid/pool3+tf1resize+random:0"
    assert inception_random.info.weights_sha256 == "random:0"
    assert not inception_random.info.calibrated
    assert inception_random.num_features == 2048


def _torchmetrics_inception(state_dict, feature: str, antialias: bool) -> NoTrainInceptionV3:
    return NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=[feature],
        feature_extractor_weights_path=state_dict_file(state_dict),
        antialias=antialias,
    )


def test_fid_agrees_with_torchmetrics_on_the_same_weights(images_a, images_b, random_inception):
    """Same random weights loaded into torchmetrics' own module; same images; same resize.

    FID is compared on the 64-d pool layer with 72 images per set so that both covariances are
    full rank (a full-rank 2048-d FID needs > 2048 images, too slow for CPU tests; the 2048-d
    formula is checked separately below). One resize mode: the formula does not depend on
    it, and the features of both modes are compared with torchmetrics' in the next test (the
    resize is the first step of every layer's features). torchmetrics' module is switched to
    channels_last only to halve CPU time; that changes summation order, not the computation.
    """
    ours64 = random_inception(True, feature="64")
    tm_fid = FrechetInceptionDistance(
        feature=64, feature_extractor_weights_path=state_dict_file(ours64.net.state_dict()),
        antialias=True,
    )
    tm_fid.inception.to(memory_format=torch.channels_last)
    tm_fid.update(images_a, real=True)
    tm_fid.update(images_b, real=False)
    expected_fid = float(tm_fid.compute())
    fid = frechet_distance(
        GaussianStats.from_features(ours64(images_a)), GaussianStats.from_features(ours64(images_b))
    )
    assert expected_fid > 1e-3  # the two styles really differ
    assert fid == pytest.approx(expected_fid, rel=1e-3)


@pytest.mark.parametrize("antialias", [True, False], ids=["antialias", "tf1-legacy"])
def test_kid_and_features_agree_with_torchmetrics_on_the_same_weights(
        antialias, images_a, images_b, random_inception, pool3_features):
    """KID uses 2048-d features, 16 images per set, and the same subsets (same seed, same draw
    order); the features themselves agree to float32 rounding, in both resize modes."""
    state = random_inception(antialias).net.state_dict()
    real, fake = images_a[:16], images_b[:16]
    # Our extractor's features of real and fake (the first 16 of the shared 24).
    f_real, f_fake = (f[:16] for f in pool3_features(antialias))
    tm_net = _torchmetrics_inception(state, "2048", antialias).to(memory_format=torch.channels_last)
    tm_kid = KernelInceptionDistance(feature=tm_net, subsets=20, subset_size=8)
    tm_kid.update(real, real=True)
    tm_kid.update(fake, real=False)
    torch.manual_seed(7)  # torchmetrics draws its subsets from the global RNG
    tm_mean, tm_std = (float(v) for v in tm_kid.compute())
    kid = kernel_inception_distance(f_real, f_fake, subsets=20, subset_size=8, seed=7)
    assert tm_mean > 0
    assert kid.mean == pytest.approx(tm_mean, rel=1e-3)
    assert kid.std == pytest.approx(tm_std, rel=1e-3)

    tm_feats = torch.cat([f.double() for f in tm_kid.real_features])
    assert float((f_real.double() - tm_feats).norm() / tm_feats.norm()) < 1e-4


def test_mixed_sizes_are_resized_per_image_before_batching(inception_random):
    small = synthetic_images(2, size=48, seed=5)
    large = synthetic_images(2, size=96, seed=6)
    batched = inception_random.extract([small[0], large[0], small[1], large[1]])
    one_by_one = np.concatenate(
        [inception_random(img[None]).numpy() for img in (small[0], large[0], small[1], large[1])]
    )
    assert batched.shape == (4, 2048)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-5)


def test_extract_of_zero_images_is_empty_and_wrong_input_is_refused(inception_random):
    assert inception_random.extract([]).shape == (0, 2048)
    with pytest.raises(ValueError, match="uint8"):
        inception_random(torch.rand(2, 3, 32, 32))


@pytest.mark.cuda
def test_cuda_exact_matches_cpu_and_fast_modes_stay_within_tolerance(inception_random, images_a):
    cpu = inception_random(images_a[:16]).double()
    exact = InceptionFeatureExtractor("random", device="cuda", exact=True)
    assert torch.allclose(exact(images_a[:16].cuda()).cpu().double(), cpu, rtol=1e-3, atol=1e-4)
    for dtype, tol in (("tf32", 1e-2), ("bf16", 5e-2)):
        fast = InceptionFeatureExtractor("random", device="cuda", exact=False, fast_dtype=dtype)
        f = fast(images_a[:16].cuda()).cpu().double()
        assert ((f - cpu).norm() / cpu.norm()) < tol
