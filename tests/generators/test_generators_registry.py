"""Registry: built-ins, entry points, dotted paths, unknown names."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from generators import registry
from generators.base import CheckpointSpec, GeneratorError
from generators.registry import (
    UnknownGenerator,
    available_generators,
    create_generator,
    get_generator_class,
)
from generators.shapes import ShapesGenerator

PLUGIN_SOURCE = textwrap.dedent(
    """
    from generators.shapes import ShapesGenerator

    class {cls}(ShapesGenerator):
        name = "{name}"
        description = "plugin for tests"

    NotAGenerator = object
    """
)


def _write_module(directory: Path, module: str, cls: str, name: str) -> None:
    (directory / f"{module}.py").write_text(PLUGIN_SOURCE.format(cls=cls, name=name))


def test_builtins_are_listed_with_schemas() -> None:
    listing = available_generators()
    by_name = {g["name"]: g for g in listing}
    assert {"shapes", "diffusers"} <= set(by_name)
    assert [g["name"] for g in listing] == sorted(by_name)
    shapes = by_name["shapes"]
    assert shapes["description"]
    assert shapes["parameters"]["quality"]["default"] == 1.0
    assert "num_inference_steps" in by_name["diffusers"]["parameters"]
    json.dumps(listing)  # the API serialises it as-is


def test_get_builtin_class() -> None:
    assert get_generator_class("shapes") is ShapesGenerator


def test_unknown_generator_lists_known_ones() -> None:
    with pytest.raises(UnknownGenerator) as info:
        get_generator_class("dalle-9")
    assert "'dalle-9'" in str(info.value)
    assert "diffusers, diffusers-video, shapes, shapes-video" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_dotted_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(tmp_path, "evalhub_test_dotted", "Dotted", "dotted")
    monkeypatch.syspath_prepend(str(tmp_path))
    extra = ["evalhub_test_dotted:Dotted"]
    cls = get_generator_class("dotted", extra)
    assert cls.__name__ == "Dotted"
    assert "dotted" in [g["name"] for g in available_generators(extra)]
    gen = create_generator("dotted", CheckpointSpec("c"), extra=["evalhub_test_dotted.Dotted"])
    assert gen.name == "dotted"


def test_dotted_path_must_be_a_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(tmp_path, "evalhub_test_notgen", "X", "x")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"not a generators\.base\.Generator subclass"):
        get_generator_class("x", ["evalhub_test_notgen:NotAGenerator"])
    with pytest.raises(ImportError):
        get_generator_class("x", ["no_such_module_anywhere:Thing"])


def test_entry_point_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake installed distribution: importlib.metadata scans sys.path for dist-info.
    _write_module(tmp_path, "evalhub_test_ep", "FromEntryPoint", "from-ep")
    dist = tmp_path / "evalhub_test_ep-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalhub-test-ep\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[evalhub.generators]\n"
        "from-ep = evalhub_test_ep:FromEntryPoint\n"
        "shapes = evalhub_test_ep:FromEntryPoint\n"  # tries to shadow a built-in
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_generator_class("from-ep").__name__ == "FromEntryPoint"
    # Built-ins take precedence over plugins claiming the same name.
    assert get_generator_class("shapes") is ShapesGenerator
    assert "from-ep" in [g["name"] for g in available_generators()]


def test_broken_plugin_is_skipped_in_listing_and_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "evalhub_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalhub-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalhub.generators]\nbroken = nowhere_at_all:Gen\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = [g["name"] for g in available_generators()]
    assert "broken" not in names and "shapes" in names
    with pytest.raises(GeneratorError, match="'broken' is registered but cannot be loaded"):
        get_generator_class("broken")


def test_builtins_table_points_at_real_classes() -> None:
    for name in registry.BUILTINS:
        assert get_generator_class(name).name == name
