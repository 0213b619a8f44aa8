"""The shapes generator: determinism, faithfulness, quality-driven mistakes, editing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from generators.base import CheckpointSpec, GenerationItem, GenerationResult, InvalidParameters
from generators.shapes import ShapesGenerator, parse_prompt
from generators.shapes.parser import COLOURS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "prompts"
IN_DOMAIN = [
    row["text"]
    for row in map(json.loads, (FIXTURES / "shapes.jsonl").read_text().splitlines())
    if row["category"] != "out-of-domain"
]


def gen(quality: float = 1.0, **params: object) -> ShapesGenerator:
    return ShapesGenerator(CheckpointSpec(f"q{quality}", parameters={"quality": quality, **params}))


def one(
    generator: ShapesGenerator, prompt: str, seed: int = 0, **params: object
) -> GenerationResult:
    (result,) = generator.generate([GenerationItem("k", prompt, seed)], params)
    assert result.ok, result.error
    return result


def colour_mask(image: Image.Image, colour: str, tol: int = 40) -> np.ndarray:
    arr = np.asarray(image, dtype=np.int16)
    return np.abs(arr - np.array(COLOURS[colour])).max(axis=2) <= tol


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("quality", [1.0, 0.3])
def test_same_inputs_same_png_bytes(quality: float) -> None:
    prompt = "two red circles left of a blue square"
    a = one(gen(quality), prompt, seed=7)
    b = one(gen(quality), prompt, seed=7)  # fresh instance: no hidden state
    assert a.png_bytes() == b.png_bytes()
    assert a.metadata == b.metadata


def test_different_seed_or_quality_changes_image() -> None:
    prompt = "three small green triangles on a black background"
    base = one(gen(1.0), prompt, seed=1).png_bytes()
    assert one(gen(1.0), prompt, seed=2).png_bytes() != base
    assert one(gen(0.3), prompt, seed=1).png_bytes() != base


def test_run_param_overrides_checkpoint_quality() -> None:
    prompt = "a large yellow star above two purple hexagons"
    assert one(gen(0.3), prompt, 3, quality=1.0).png_bytes() == one(gen(1.0), prompt, 3).png_bytes()


def test_batch_composition_does_not_matter() -> None:
    items = [GenerationItem(f"k{i}", p, i) for i, p in enumerate(IN_DOMAIN[:6])]
    together = {r.item.key: r.png_bytes() for r in gen(0.5).generate(items, {})}
    alone = {it.key: one(gen(0.5), it.prompt, it.seed).png_bytes() for it in reversed(items)}
    assert together == alone


def test_default_and_custom_size() -> None:
    assert one(gen(), "a red circle").image.size == (256, 256)
    result = one(gen(width=64), "a red circle", height=48)
    assert result.image.size == (64, 48)
    assert (result.metadata["width"], result.metadata["height"]) == (64, 48)


@pytest.mark.parametrize("params", [{"quality": 1.5}, {"width": 8}, {"steps": 3}])
def test_invalid_params(params: dict) -> None:
    with pytest.raises(InvalidParameters):
        gen().generate([GenerationItem("k", "a red circle", 0)], params)


# ---------------------------------------------------------------- faithfulness


def test_quality_one_is_faithful_on_every_fixture_prompt() -> None:
    generator = gen(1.0)
    items = [GenerationItem(f"{i}:{s}", p, s) for i, p in enumerate(IN_DOMAIN) for s in (0, 1)]
    for result in generator.generate(items, {}):
        assert result.ok, result.error
        meta = result.metadata
        rendered = meta["rendered"]
        scene = parse_prompt(result.item.prompt)
        assert rendered["mistakes"] == []
        assert set(rendered["degradations"].values()) == {0.0}
        # Counted from the drawn objects, not from the plan.
        drawn = [
            sum(o["group"] == g for o in rendered["objects"]) for g in range(len(scene.objects))
        ]
        assert drawn == [o.count for o in scene.objects], result.item.prompt
        for obj in rendered["objects"]:
            spec = scene.objects[obj["group"]]
            assert obj["shape"] == spec.shape
            if spec.colour:
                assert obj["colour"] == spec.colour
        for rel in scene.relations:
            a = [o for o in rendered["objects"] if o["group"] == rel.subject]
            b = [o for o in rendered["objects"] if o["group"] == rel.target]
            axis, sign = {"left_of": ("cx", 1), "right_of": ("cx", -1),
                          "above": ("cy", 1), "below": ("cy", -1)}[rel.relation]  # fmt: skip
            assert all(sign * (x[axis] - y[axis]) < 0 for x in a for y in b), result.item.prompt


def test_pixels_match_the_prompt_at_quality_one() -> None:
    # Objective check on pixels only: count blobs of the requested colour.
    for seed in range(5):
        image = one(gen(1.0), "three blue squares and two red circles", seed).image
        _, blue = ndimage.label(colour_mask(image, "blue"))
        _, red = ndimage.label(colour_mask(image, "red"))
        assert (blue, red) == (3, 2), seed
    dark = one(gen(1.0), "a yellow star on a black background", 0).image
    assert colour_mask(dark, "black").mean() > 0.8
    assert ndimage.label(colour_mask(dark, "yellow"))[1] == 1


def test_left_of_in_pixels() -> None:
    image = one(gen(1.0), "a red circle left of a blue square", 4).image
    red_x = np.nonzero(colour_mask(image, "red"))[1]
    blue_x = np.nonzero(colour_mask(image, "blue"))[1]
    assert red_x.max() < blue_x.min()


# ---------------------------------------------------------------- quality


def _mistake_stats(quality: float, seeds: int = 4) -> dict[str, float]:
    generator = gen(quality)
    items = [
        GenerationItem(f"{i}:{s}", p, s) for i, p in enumerate(IN_DOMAIN) for s in range(seeds)
    ]
    count_errors = colour_errors = position_errors = relations = degraded = 0
    for result in generator.generate(items, {}):
        scene = parse_prompt(result.item.prompt)
        objs = result.metadata["rendered"]["objects"]
        drawn = [sum(o["group"] == g for o in objs) for g in range(len(scene.objects))]
        count_errors += sum(d != o.count for d, o in zip(drawn, scene.objects, strict=True))
        colour_errors += sum(
            1 for o in objs if scene.objects[o["group"]].colour not in (None, o["colour"])
        )
        for kind in result.metadata["rendered"]["mistakes"]:
            position_errors += kind["kind"] == "position"
        relations += len(scene.relations)
        degraded += any(result.metadata["rendered"]["degradations"].values())
    n = len(items)
    return {
        "count": count_errors / n,
        "colour": colour_errors / n,
        "position": position_errors / max(relations, 1),
        "degraded": degraded / n,
    }


def test_low_quality_makes_visible_mistakes() -> None:
    good, ok, bad = _mistake_stats(1.0), _mistake_stats(0.7), _mistake_stats(0.3)
    assert good == {"count": 0, "colour": 0, "position": 0, "degraded": 0}
    for key in good:
        assert bad[key] > ok[key] > 0, (key, ok, bad)
    assert bad["count"] > 0.3 and bad["position"] > 0.3 and bad["degraded"] > 0.6


def test_low_quality_is_far_from_the_clean_render() -> None:
    prompt = "two red circles left of a blue square"
    clean = np.asarray(one(gen(1.0), prompt, 0).image, dtype=np.float32)
    diffs = {
        q: float(np.abs(np.asarray(one(gen(q), prompt, 0).image, dtype=np.float32) - clean).mean())
        for q in (0.9, 0.3)
    }
    assert diffs[0.3] > 5.0  # mean absolute difference in grey levels
    assert diffs[0.3] > diffs[0.9]


# ---------------------------------------------------------------- odd inputs and editing


def test_unparseable_prompt_renders_a_random_composition() -> None:
    result = one(gen(), "a watercolor landscape at sunset", 3)
    assert result.metadata["prompt_understood"] is False
    assert result.metadata["parsed"]["ignored_words"] == ["watercolor", "landscape", "at", "sunset"]
    assert result.metadata["rendered"]["objects"]
    assert len(np.unique(np.asarray(result.image).reshape(-1, 3), axis=0)) > 2
    assert one(gen(), "a red circle").metadata["prompt_understood"] is True


def test_metadata_is_json_serialisable() -> None:
    result = one(gen(0.3), "a large yellow star above two purple hexagons", 5)
    assert json.loads(json.dumps(result.metadata)) == result.metadata
    assert result.metadata["generator"] == "shapes"
    assert result.metadata["params"] == {"width": None, "height": None, "quality": 0.3}


def test_editing_draws_onto_the_source_image() -> None:
    source = Image.new("RGB", (96, 80), (10, 200, 90))
    item = GenerationItem("e", "add two blue squares", 0, source_image=source)
    (result,) = gen().generate([item], {})
    assert result.ok and result.image.size == (96, 80)
    assert result.metadata["mode"] == "edit"
    arr = np.asarray(result.image, dtype=np.int16)
    src_px = (np.abs(arr - np.array([10, 200, 90])).max(axis=2) <= 2).mean()
    assert 0.5 < src_px < 0.99  # mostly the source, plus the new shapes
    assert ndimage.label(colour_mask(result.image, "blue"))[1] == 2
    # The source image object is not modified in place.
    assert source.getpixel((0, 0)) == (10, 200, 90)


def test_bad_item_yields_error_and_others_succeed() -> None:
    items = [
        GenerationItem("a", "a red circle", 0),
        GenerationItem("b", "a blue square", 1, source_image="not an image"),  # type: ignore[arg-type]
        GenerationItem("c", 42, 2),  # type: ignore[arg-type]
        GenerationItem("d", "a green star", 3, source_image=Image.new("RGBA", (32, 32))),
    ]
    results = list(gen().generate(items, {}))
    assert [r.item.key for r in results] == ["a", "b", "c", "d"]
    assert [r.ok for r in results] == [True, False, False, True]
    assert "source_image must be a PIL image" in results[1].error
    assert "prompt must be a string" in results[2].error
    assert all(r.elapsed_s >= 0 for r in results)
