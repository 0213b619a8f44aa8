"""CLIP models other than the default: the message for missing weights names the command
that fetches exactly them, ``fetch_all_weights`` fetches them, and a model named by its
Hugging Face hub repository (``hf-hub:``) works offline from the cache, with real weights or
random ones built from its cached architecture."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from metrics.clip_score import ClipEmbedder
from metrics.weights import (
    INCEPTION_FILENAME,
    WeightsFetchError,
    WeightsMissingError,
    fetch_all_weights,
    file_sha256,
)
from tests.metrics.conftest import TINY_CLIP_CONFIG, hf_cache_put, synthetic_images

HUB = "hf-hub:evalhub-test/tiny-clip"
REPO = "evalhub-test/tiny-clip"


@pytest.fixture
def caches(monkeypatch, tmp_path):
    """Empty torch hub and Hugging Face caches, the hub offline, real weights."""
    import huggingface_hub.constants

    monkeypatch.delenv("EVALHUB_RANDOM_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return tmp_path


def _tiny_clip_files(hf_dir, *, weights: bool) -> dict[str, torch.Tensor]:
    """The tiny architecture's config (and a state dict of it) in the hub cache; the state
    dict is returned."""
    from open_clip.model import CLIP

    hf_cache_put(hf_dir, REPO, "open_clip_config.json", json.dumps(TINY_CLIP_CONFIG).encode())
    torch.manual_seed(3)
    state = CLIP(**TINY_CLIP_CONFIG["model_cfg"]).state_dict()
    if weights:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        hf_cache_put(hf_dir, REPO, "open_clip_pytorch_model.bin", buffer.getvalue())
    return state


def test_missing_clip_weights_name_the_command_that_fetches_that_model(caches):
    with pytest.raises(WeightsMissingError) as err:
        ClipEmbedder("ViT-L-14", "openai", device="cpu")
    message = str(err.value)
    assert ("`python manage.py fetch_weights --clip-model ViT-L-14 --clip-pretrained openai`"
            in message)
    assert "timm--vit_large_patch14_clip_224.openai" in message
    with pytest.raises(WeightsMissingError, match=r"run `python manage\.py fetch_weights` "):
        ClipEmbedder(device="cpu")  # the default model: the plain command fetches it


def test_an_unknown_pretrained_tag_says_which_tags_the_model_has(caches):
    with pytest.raises(ValueError, match="'no_such_tag' is not an open_clip pretrained tag of "
                                         "ViT-B-32 \\(its tags: openai, "):
        ClipEmbedder("ViT-B-32", "no_such_tag", device="cpu")


def test_an_hf_hub_model_is_read_from_the_cache_offline(caches):
    state = _tiny_clip_files(caches / "hf", weights=True)
    embedder = ClipEmbedder(HUB, device="cpu")
    weights = next((caches / "hf").rglob("open_clip_pytorch_model.bin"))
    assert embedder.info.backbone_id == "open_clip:hf-hub:evalhub-test/tiny-clip"
    assert embedder.info.weights_sha256 == file_sha256(weights) and embedder.info.calibrated
    loaded = embedder.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())
    emb = embedder.image_embeddings(list(synthetic_images(2, size=40)))
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_an_hf_hub_model_with_random_weights_is_built_from_its_cached_architecture(
        caches, monkeypatch):
    _tiny_clip_files(caches / "hf", weights=False)
    monkeypatch.setenv("EVALHUB_CACHE_DIR", str(caches / "evalhub"))
    first = ClipEmbedder(HUB, weights="random", device="cpu")
    again = ClipEmbedder(HUB, weights="random", device="cpu")
    assert first.info.backbone_id == (
        "open_clip:hf-hub:evalhub-test/tiny-clip/random:0+aligned+uncalibrated")
    assert not first.info.calibrated
    images = list(synthetic_images(2, size=40))
    np.testing.assert_array_equal(first.image_embeddings(images), again.image_embeddings(images))
    assert first.text_embeddings(["a red square"]).shape == (1, 32)


def test_an_hf_hub_model_not_cached_names_the_command_that_fetches_it(caches):
    with pytest.raises(WeightsMissingError) as err:
        ClipEmbedder(HUB, weights="random", device="cpu")
    message = str(err.value)
    assert "open_clip_config.json" in message and "architecture" in message
    assert f"`python manage.py fetch_weights --clip-model {HUB}`" in message
    assert "EVALHUB_RANDOM_WEIGHTS=1" not in message  # random weights need the file too

    hf_cache_put(caches / "hf", REPO, "open_clip_config.json",
                 json.dumps(TINY_CLIP_CONFIG).encode())
    with pytest.raises(WeightsMissingError) as err:
        ClipEmbedder(HUB, device="cpu")
    message = str(err.value)
    assert "open_clip_pytorch_model.bin" in message and "weights are missing" in message
    assert f"`python manage.py fetch_weights --clip-model {HUB}`" in message


def _standard_files(torch_home) -> None:
    """Stand-ins for the torch hub files, so that fetch_all_weights gets to the CLIP ones."""
    from metrics.weights import ALEXNET_FILENAME, I3D_FILENAME

    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in (INCEPTION_FILENAME, ALEXNET_FILENAME, I3D_FILENAME):
        torch.save({}, checkpoints / name)


def test_fetch_all_weights_fetches_the_clip_models_asked_for(caches):
    """Offline, from a cache already holding them: each model asked for goes through
    open_clip's downloader, which answers with the cached file."""
    _standard_files(caches / "torch")
    large = hf_cache_put(caches / "hf", "timm/vit_large_patch14_clip_224.openai",
                         "open_clip_pytorch_model.bin", b"weights")
    _tiny_clip_files(caches / "hf", weights=True)
    paths = fetch_all_weights(clip_models=(("ViT-L-14", "openai"), (HUB, "")), progress=False)
    assert paths["open_clip:ViT-L-14/openai"] == str(large)
    assert paths[f"open_clip:{HUB}"].endswith("open_clip_pytorch_model.bin")
    with pytest.raises(WeightsFetchError, match="could not download open_clip weights "
                                                "ViT-B-32/no_such_tag: 'no_such_tag' is not"):
        fetch_all_weights(clip_models=(("ViT-B-32", "no_such_tag"),), progress=False)
