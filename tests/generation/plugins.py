"""Generator plugins used by tests, registered through EVALHUB_GENERATORS dotted paths."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from PIL import Image

from generators.base import GenerationItem, GenerationResult, Generator


def _solid(item: GenerationItem) -> tuple[Image.Image, dict[str, Any]]:
    shade = (item.seed * 37 + len(item.prompt) * 11) % 256
    return Image.new("RGB", (24, 24), (shade, 255 - shade, 90)), {}


class FlakyGenerator(Generator):
    """Fails every item whose prompt contains the word "fail"."""

    name = "test-flaky"
    description = "test plugin: fails prompts containing 'fail'"
    parameters_schema: dict[str, dict[str, Any]] = {}

    def _generate(self, items: list[GenerationItem], params: dict[str, Any]
                  ) -> Iterator[GenerationResult]:
        def make(item: GenerationItem) -> tuple[Image.Image, dict[str, Any]]:
            if "fail" in item.prompt:
                raise RuntimeError(f"cannot draw {item.prompt!r}")
            return _solid(item)

        for item in items:
            yield self.run_item(item, params, make)


class SlowGenerator(Generator):
    """Takes ``delay_s`` per item, so a test can kill the worker mid-batch."""

    name = "test-slow"
    description = "test plugin: sleeps per item"
    parameters_schema = {"delay_s": {"type": "number", "default": 0.3, "minimum": 0}}

    def _generate(self, items: list[GenerationItem], params: dict[str, Any]
                  ) -> Iterator[GenerationResult]:
        def make(item: GenerationItem) -> tuple[Image.Image, dict[str, Any]]:
            time.sleep(params["delay_s"])
            return _solid(item)

        for item in items:
            yield self.run_item(item, params, make)


class NoMetadataGenerator(Generator):
    """Breaks the result contract for prompts containing "no metadata": the result's metadata
    is None, which an image row cannot hold (a plugin's bug, not a failed item)."""

    name = "test-no-metadata"
    description = "test plugin: metadata None for prompts containing 'no metadata'"
    parameters_schema: dict[str, dict[str, Any]] = {}

    def _generate(self, items: list[GenerationItem], params: dict[str, Any]
                  ) -> Iterator[GenerationResult]:
        for item in items:
            result = self.run_item(item, params, _solid)
            if "no metadata" in item.prompt:
                result.metadata = None  # type: ignore[assignment]
            yield result


PLUGINS = ["tests.generation.plugins:FlakyGenerator", "tests.generation.plugins:SlowGenerator",
           "tests.generation.plugins:NoMetadataGenerator"]
# The same plugins for a worker process, which reads them from its environment.
PLUGIN_ENV = {"EVALHUB_GENERATORS": ",".join(PLUGINS)}
