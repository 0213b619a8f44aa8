"""Plugin interface: parameter validation, result helpers, per-item error isolation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from generators.base import (
    CheckpointSpec,
    GenerationItem,
    GenerationResult,
    Generator,
    InvalidParameters,
    encode_png,
    validate_params,
)

SCHEMA = {
    "steps": {"type": "integer", "default": 10, "minimum": 1, "maximum": 100},
    "scale": {"type": "number", "default": 1.5, "minimum": 0.0},
    "mode": {"type": "string", "default": "fast", "enum": ["fast", "slow"]},
    "flag": {"type": "boolean", "default": False},
    "size": {"type": "integer", "default": None, "nullable": True, "multipleOf": 8},
}


class Dummy(Generator):
    """Paints a flat colour; fails on prompts containing 'boom'."""

    name = "dummy"
    description = "test generator"
    parameters_schema = SCHEMA
    closed = 0

    def _generate(
        self, items: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        for item in items:
            yield self.run_item(item, params, self._one)

    def _one(self, item: GenerationItem) -> tuple[Image.Image, dict]:
        if "boom" in item.prompt:
            raise RuntimeError("exploded on purpose")
        return Image.new("RGB", (8, 8), (item.seed % 256, 0, 0)), {"extra": 1}

    def close(self) -> None:
        type(self).closed += 1


def test_defaults_then_checkpoint_then_run() -> None:
    resolved = validate_params(SCHEMA, {"steps": 20}, {"steps": 5, "mode": "slow"})
    assert resolved == {"steps": 20, "scale": 1.5, "mode": "slow", "flag": False, "size": None}


def test_numbers_are_normalised() -> None:
    resolved = validate_params(SCHEMA, {"steps": 30.0, "scale": 2, "size": 64})
    assert resolved["steps"] == 30 and isinstance(resolved["steps"], int)
    assert resolved["scale"] == 2.0 and isinstance(resolved["scale"], float)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stepz": 3}, "unknown run parameter(s) 'stepz'; known parameters: flag, mode"),
        ({"steps": "10"}, "'steps' must be an integer"),
        ({"steps": True}, "'steps' must be an integer"),
        ({"steps": 2.5}, "'steps' must be an integer"),
        ({"steps": 0}, "'steps' must be >= 1"),
        ({"steps": 101}, "'steps' must be <= 100"),
        ({"scale": -1}, "'scale' must be >= 0.0"),
        ({"scale": float("nan")}, "'scale' must be finite"),
        ({"mode": "medium"}, "'mode' must be one of 'fast', 'slow'"),
        ({"flag": 1}, "'flag' must be a boolean"),
        ({"steps": None}, "'steps' must not be null"),
        ({"size": 60}, "'size' must be a multiple of 8"),
    ],
)
def test_invalid_params(params: dict, message: str) -> None:
    with pytest.raises(InvalidParameters) as info:
        validate_params(SCHEMA, params)
    assert message in str(info.value)


def test_every_problem_is_named_at_once() -> None:
    # One answer lists all there is to fix: an unknown key did hide a value out of range.
    with pytest.raises(InvalidParameters) as info:
        validate_params(SCHEMA, {"steps": 0, "bogus": 1, "other": 2})
    message = str(info.value)
    assert "unknown run parameter(s) 'bogus', 'other'" in message
    assert "run parameter 'steps'" in message


def test_bad_checkpoint_defaults_fail_at_construction() -> None:
    with pytest.raises(InvalidParameters, match="unknown checkpoint parameter"):
        Dummy(CheckpointSpec("c", parameters={"nope": 1}))


def test_invalid_run_params_raise_before_any_item() -> None:
    gen = Dummy(CheckpointSpec("c"))
    with pytest.raises(InvalidParameters):
        gen.generate([GenerationItem("a", "x", 1)], {"steps": -1})


def test_failing_item_does_not_abort_batch() -> None:
    gen = Dummy(CheckpointSpec("c", parameters={"steps": 3}))
    items = [GenerationItem(str(i), "boom" if i == 1 else "ok", i) for i in range(4)]
    results = list(gen.generate(items, {}))
    assert [r.item.key for r in results] == ["0", "1", "2", "3"]
    assert [r.ok for r in results] == [True, False, True, True]
    bad = results[1]
    assert bad.image is None and bad.error == "RuntimeError: exploded on purpose"
    assert bad.metadata["params"]["steps"] == 3
    assert results[0].metadata["extra"] == 1 and results[0].metadata["checkpoint"] == "c"
    with pytest.raises(ValueError, match="has no image"):
        bad.png_bytes()


def test_context_manager_closes() -> None:
    before = Dummy.closed
    with Dummy(CheckpointSpec("c")) as gen:
        list(gen.generate([GenerationItem("a", "x", 1)]))
    assert Dummy.closed == before + 1


def test_encode_png_is_deterministic_and_ignores_info() -> None:
    a = Image.new("RGB", (16, 16), (1, 2, 3))
    b = Image.new("RGB", (16, 16), (1, 2, 3))
    b.info["comment"] = "something"
    assert encode_png(a) == encode_png(b)
    assert encode_png(a).startswith(b"\x89PNG")


def test_package_imports_neither_django_nor_torch() -> None:
    code = (
        "import sys, generators, generators.shapes, generators.diffusers_gen\n"
        "from generators import available_generators\n"
        "names = [g['name'] for g in available_generators()]\n"
        "assert {'shapes', 'diffusers'} <= set(names), names\n"
        "bad = [m for m in ('django', 'torch', 'diffusers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
