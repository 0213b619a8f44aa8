"""CLIP embeddings/score (open_clip) and LPIPS, against direct calls of the libraries."""

from __future__ import annotations

import itertools

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from metrics.clip_score import ClipEmbedder, align_random_towers, clip_score, clip_scores
from metrics.cmmd import cmmd
from tests.metrics.conftest import synthetic_images

PROMPTS = ["a red apple on a table", "a mountain lake at dawn", "a cat", "blue stripes"]


def _direct_open_clip(images: torch.Tensor, prompts: list[str]):
    """What an open_clip user writes, on the same seeded random model, and the Householder
    vector of the random towers' alignment (metrics.clip_score's docstring)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(p) for p in pil]))
        txt = model.encode_text(tokenizer(prompts))
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    u = align_random_towers(model, preprocess, tokenizer).double().numpy()
    return img.double().numpy(), txt.double().numpy(), u


def test_clip_embeddings_and_score_equal_a_direct_open_clip_computation(clip_random):
    """Images as open_clip embeds them; prompts too, reflected by H = I - 2uu^T."""
    images = torch.cat([synthetic_images(2, seed=1), synthetic_images(2, seed=2, style="x")])
    img_ref, txt_direct, u = _direct_open_clip(images, PROMPTS)
    txt_ref = txt_direct - 2.0 * np.outer(txt_direct @ u, u)
    img = clip_random.image_embeddings(list(images))
    txt = clip_random.text_embeddings(PROMPTS)
    np.testing.assert_allclose(img, img_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(txt, txt_ref, rtol=1e-4, atol=1e-5)
    # The reflection is orthogonal: the prompts' geometry among themselves is open_clip's.
    np.testing.assert_allclose(txt @ txt.T, txt_direct @ txt_direct.T, atol=1e-5)

    cos = (img_ref * txt_ref).sum(1)
    result = clip_score(clip_random, list(images), PROMPTS)
    np.testing.assert_allclose(result.per_image, 100 * np.maximum(cos, 0), atol=1e-3)
    assert result.mean == pytest.approx(float(np.mean(100 * np.maximum(cos, 0))), abs=1e-3)


def test_clip_score_is_100_times_clamped_cosine():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    b = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(clip_scores(a, b), [100.0, 0.0, 60.0])


def test_random_clip_does_not_collapse_and_is_deterministic(clip_random):
    images = list(torch.cat([synthetic_images(4, seed=3), synthetic_images(4, seed=4, style="x")]))
    emb = clip_random.image_embeddings(images)
    cos = emb @ emb.T
    off_diag = cos[~np.eye(8, dtype=bool)]
    assert off_diag.max() < 0.999  # every pair of distinct images is distinguishable
    assert emb.std(0).mean() > 1e-3
    txt = clip_random.text_embeddings(PROMPTS)
    assert (txt @ txt.T)[~np.eye(4, dtype=bool)].max() < 0.999
    again = ClipEmbedder(weights="random", device="cpu").image_embeddings(images)
    np.testing.assert_array_equal(emb, again)
    # CMMD between the two styles is clearly positive even with random weights.
    assert cmmd(emb[:4], emb[4:]) > 0
    assert clip_random.info.backbone_id == "open_clip:ViT-B-32/random:0+aligned+uncalibrated"


def test_random_clip_scores_vary_with_the_image_and_the_prompt(clip_random):
    """Unaligned random towers gave every image-prompt cosine a negative sign: every score 0,
    and the metric judge, the gallery's sort and the correlation with humans had nothing."""
    images = list(torch.cat([synthetic_images(4, seed=11), synthetic_images(4, seed=12,
                                                                            style="x")]))
    prompts = [*PROMPTS, "a painting of a ship", "green dots", "a child's drawing", "fog"]
    # Every prompt against every image: each image embedded once, scored by the shared rule.
    image_emb, text_emb = clip_random.image_embeddings(images), clip_random.text_embeddings(prompts)
    scores = clip_scores(np.tile(image_emb, (len(prompts), 1)),
                         np.repeat(text_emb, len(images), axis=0)
                         ).reshape(len(prompts), len(images))  # (prompt, image)
    # ... which is what clip_score gives each image against its own prompt.
    np.testing.assert_allclose(clip_score(clip_random, images, prompts).per_image,
                               np.diag(scores), rtol=1e-5)
    assert (scores > 0).all()
    assert scores.std(axis=1).min() > 0.5  # each prompt tells the images apart
    assert scores.std(axis=0).min() > 0.5  # each image tells the prompts apart


def test_clip_score_input_errors(clip_random):
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        clip_score(clip_random, list(synthetic_images(2)), ["x"])
    with pytest.raises(ValueError, match="zero images"):
        clip_score(clip_random, [], [])


def test_lpips_pairwise_equals_a_direct_lpips_call(lpips_random):
    a, b = synthetic_images(3, seed=5), synthetic_images(3, seed=6, style="x")
    ours = lpips_random.pairwise_distance(a, b)
    with torch.no_grad():
        direct = lpips_random.model(a.float() / 127.5 - 1, b.float() / 127.5 - 1).flatten()
    np.testing.assert_allclose(ours, direct.double().numpy(), rtol=1e-5, atol=1e-7)
    assert (ours > 0).all()
    np.testing.assert_allclose(lpips_random.pairwise_distance(a, a), 0.0, atol=1e-7)


def test_lpips_diversity_is_the_mean_over_unordered_pairs(lpips_random):
    imgs = torch.cat([synthetic_images(2, seed=7), synthetic_images(2, seed=8, style="x")])
    expected = []
    with torch.no_grad():
        for i, j in itertools.combinations(range(4), 2):
            x, y = imgs[i : i + 1].float() / 127.5 - 1, imgs[j : j + 1].float() / 127.5 - 1
            expected.append(float(lpips_random.model(x, y)))
    assert lpips_random.diversity(imgs) == pytest.approx(np.mean(expected), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 images"):
        lpips_random.diversity(imgs[:1])


def test_lpips_random_weights_are_deterministic(lpips_random):
    from metrics.lpips_distance import LpipsScorer

    a, b = synthetic_images(2, seed=9), synthetic_images(2, seed=10, style="x")
    again = LpipsScorer(weights="random", device="cpu")
    np.testing.assert_array_equal(
        lpips_random.pairwise_distance(a, b), again.pairwise_distance(a, b)
    )


def test_lpips_refuses_mismatched_sizes(lpips_random):
    with pytest.raises(ValueError, match="equal shapes"):
        lpips_random.pairwise_distance(synthetic_images(1, size=32), synthetic_images(1, size=48))


@pytest.mark.parametrize("side", [8, 16, 24, 30])
def test_lpips_takes_images_smaller_than_alexnet_needs_by_upsampling_them(lpips_random, side):
    """AlexNet's fifth layer needs 31 px on the shorter side (two stride-2 max-pools after a
    stride-4 convolution); smaller images are upsampled (bilinear) to that before LPIPS, and
    the distance is then the one of the upsampled images."""
    from metrics.lpips_distance import LPIPS_MIN_SIDE, lpips_input_size

    assert LPIPS_MIN_SIDE == 31
    assert lpips_input_size(side, 2 * side) == (31, 62)
    imgs = torch.cat([synthetic_images(2, size=side, seed=11),
                      synthetic_images(1, size=side, seed=12, style="x")])
    upsampled = torch.nn.functional.interpolate(
        imgs.float() / 127.5 - 1, size=(31, 31), mode="bilinear", align_corners=False)
    with torch.no_grad():
        direct = [float(lpips_random.model(upsampled[i:i + 1], upsampled[j:j + 1]))
                  for i, j in itertools.combinations(range(3), 2)]
    assert lpips_random.diversity(imgs) == pytest.approx(np.mean(direct), rel=1e-5)
    np.testing.assert_allclose(lpips_random.pairwise_distance(imgs[:1], imgs[1:2]), direct[:1],
                               rtol=1e-5)


def test_lpips_leaves_images_of_31_px_and_more_as_they_are(lpips_random):
    from metrics.lpips_distance import lpips_input_size

    assert lpips_input_size(31, 40) == (31, 40) and lpips_input_size(512, 300) == (512, 300)
    a, b = synthetic_images(1, size=31, seed=13), synthetic_images(1, size=31, seed=14)
    with torch.no_grad():
        direct = float(lpips_random.model(a.float() / 127.5 - 1, b.float() / 127.5 - 1))
    assert lpips_random.pairwise_distance(a, b)[0] == pytest.approx(direct, rel=1e-5)
