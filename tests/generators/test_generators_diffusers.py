"""The diffusers generator, end to end on a tiny random pipeline built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generators.base import CheckpointSpec, GenerationItem, InvalidParameters, ModelNotFound
from generators.diffusers_gen import DiffusersGenerator
from generators.registry import create_generator

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

FAST = {"num_inference_steps": 2, "width": 64, "height": 64}


def make(path: Path, **params: object) -> DiffusersGenerator:
    return DiffusersGenerator(CheckpointSpec("tiny", str(path), {**FAST, **params}), device="cpu")


def items(n: int, offset: int = 0) -> list[GenerationItem]:
    prompts = ["a red circle", "two blue squares", "a green star", "a yellow triangle"]
    return [
        GenerationItem(f"k{i}", prompts[i % len(prompts)], seed=100 + i)
        for i in range(offset, offset + n)
    ]


def pixels(result) -> np.ndarray:  # type: ignore[no-untyped-def]
    assert result.ok, result.error
    return np.asarray(result.image, dtype=np.int16)


def test_text_to_image_is_deterministic(tiny_sd_path: Path) -> None:
    first = list(make(tiny_sd_path).generate(items(2), {}))
    again = list(make(tiny_sd_path).generate(items(2), {}))  # fresh instance, reloaded
    assert [r.png_bytes() for r in first] == [r.png_bytes() for r in again]
    assert first[0].image.size == (64, 64)
    assert first[0].png_bytes() != first[1].png_bytes()
    meta = first[0].metadata
    assert meta["mode"] == "text-to-image" and meta["torch_dtype"] == "float32"
    assert meta["pipeline"] == "StableDiffusionPipeline" and meta["device"] == "cpu"
    assert meta["params"]["num_inference_steps"] == 2
    json.dumps(meta)


def test_different_seed_changes_image(tiny_sd_path: Path) -> None:
    gen = make(tiny_sd_path)
    a, b = gen.generate(
        [GenerationItem("a", "a red circle", 1), GenerationItem("b", "a red circle", 2)], {}
    )
    assert a.png_bytes() != b.png_bytes()


def test_batch_size_one_is_independent_of_neighbours(tiny_sd_path: Path) -> None:
    gen = make(tiny_sd_path)
    target = items(1, offset=2)[0]
    alone = next(iter(gen.generate([target], {}))).png_bytes()
    mixed = list(gen.generate([*items(2), target, *items(1, offset=3)], {"batch_size": 1}))
    assert mixed[2].item == target and mixed[2].png_bytes() == alone


def test_batching_does_not_change_images(tiny_sd_path: Path) -> None:
    # Each image gets its own torch.Generator, so noise is batch-independent; only
    # float rounding inside batched kernels may differ (a grey level or two).
    gen = make(tiny_sd_path)
    batch = items(4)
    single = [pixels(r) for r in gen.generate(batch, {"batch_size": 1})]
    batched = [pixels(r) for r in gen.generate(batch, {"batch_size": 4})]
    reordered = {r.item.key: pixels(r) for r in gen.generate(batch[::-1], {"batch_size": 3})}
    for item, s, b in zip(batch, single, batched, strict=True):
        for other in (b, reordered[item.key]):
            diff = np.abs(s - other)
            assert diff.max() <= 3 and diff.mean() < 0.5, (diff.max(), diff.mean())
    # ...whereas a different seed changes the image completely.
    assert np.abs(single[0] - single[1]).mean() > 5


def test_image_to_image(tiny_sd_path: Path) -> None:
    gen = make(tiny_sd_path)
    source = Image.new("RGB", (64, 64), (200, 30, 30))
    edit = GenerationItem("e", "make it blue", 5, source_image=source)
    results = list(gen.generate([edit, *items(1)], {"strength": 0.5, "batch_size": 2}))
    assert [r.ok for r in results] == [True, True]
    assert results[0].metadata["mode"] == "image-to-image"
    assert results[0].metadata["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert results[1].metadata["mode"] == "text-to-image"
    assert results[0].image.size == (64, 64)
    again = next(iter(make(tiny_sd_path).generate([edit], {"strength": 0.5})))
    assert again.png_bytes() == results[0].png_bytes()
    stronger = next(iter(gen.generate([edit], {"strength": 1.0})))
    assert stronger.png_bytes() != results[0].png_bytes()


def test_scheduler_parameter(tiny_sd_path: Path) -> None:
    gen = make(tiny_sd_path)
    (ddim,) = gen.generate(items(1), {})
    (euler,) = gen.generate(items(1), {"scheduler": "EulerDiscreteScheduler"})
    (back,) = gen.generate(items(1), {})
    assert ddim.metadata["scheduler"] == "DDIMScheduler"
    assert euler.metadata["scheduler"] == "EulerDiscreteScheduler"
    assert euler.png_bytes() != ddim.png_bytes()
    assert back.png_bytes() == ddim.png_bytes()  # the override does not stick
    with pytest.raises(InvalidParameters, match="not a diffusers scheduler"):
        gen.generate(items(1), {"scheduler": "NoSuchScheduler"})
    with pytest.raises(InvalidParameters, match="not a diffusers scheduler"):
        DiffusersGenerator.resolve_params({"scheduler": "Image"}, {"num_inference_steps": 2})
    resolved = DiffusersGenerator.resolve_params({"scheduler": "DDIMScheduler"}, FAST)
    assert resolved["scheduler"] == "DDIMScheduler" and resolved["num_inference_steps"] == 2


def test_pipeline_is_cached_per_instance(tiny_sd_path: Path) -> None:
    gen = make(tiny_sd_path)
    pipe = gen.load(gen.validate_params({}))
    list(gen.generate(items(1), {}))
    assert gen.load(gen.validate_params({})) is pipe
    gen.close()
    assert gen.load(gen.validate_params({})) is not pipe


def test_failing_item_does_not_abort_batch(tiny_sd_path: Path) -> None:
    bad = GenerationItem("bad", "x", 1, source_image="not an image")  # type: ignore[arg-type]
    good = items(2)
    results = list(make(tiny_sd_path).generate([good[0], bad, good[1]], {"batch_size": 4}))
    assert [r.item.key for r in results] == ["k0", "bad", "k1"]
    assert [r.ok for r in results] == [True, False, True]
    assert "AttributeError" in results[1].error


def test_invalid_size_is_rejected(tiny_sd_path: Path) -> None:
    with pytest.raises(InvalidParameters, match="multiple of 8"):
        make(tiny_sd_path).generate(items(1), {"width": 60})


def test_missing_hub_model_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    gen = DiffusersGenerator(CheckpointSpec("sd", "evalhub-test/does-not-exist"), device="cpu")
    with pytest.raises(ModelNotFound) as info:
        list(gen.generate(items(1), FAST))
    message = str(info.value)
    assert "'evalhub-test/does-not-exist'" in message
    assert "offline" in message and "Hugging Face cache" in message


def test_missing_local_path_or_uri(tmp_path: Path) -> None:
    empty = DiffusersGenerator(CheckpointSpec("none"), device="cpu")
    with pytest.raises(ModelNotFound, match="has no weights_uri"):
        list(empty.generate(items(1), FAST))
    broken = DiffusersGenerator(CheckpointSpec("broken", str(tmp_path)), device="cpu")
    with pytest.raises(ModelNotFound, match="local path"):
        list(broken.generate(items(1), FAST))


def test_via_registry(tiny_sd_path: Path) -> None:
    gen = create_generator("diffusers", CheckpointSpec("tiny", str(tiny_sd_path), FAST))
    (result,) = gen.generate(items(1), {})
    assert result.ok and result.metadata["generator"] == "diffusers"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision(tiny_sd_path: Path) -> None:
    gen = DiffusersGenerator(CheckpointSpec("tiny", str(tiny_sd_path), FAST), device="cuda")
    first = list(gen.generate(items(2), {"dtype": "float16", "batch_size": 2}))
    again = list(gen.generate(items(2), {"dtype": "float16", "batch_size": 2}))
    assert all(r.ok for r in first), [r.error for r in first]
    assert first[0].metadata["torch_dtype"] == "float16"
    assert [r.png_bytes() for r in first] == [r.png_bytes() for r in again]
