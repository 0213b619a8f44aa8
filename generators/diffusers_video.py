"""The "diffusers-video" generator: any diffusers text-to-video pipeline (a ``DiffusionPipeline``
whose output has ``frames``: ``TextToVideoSDPipeline``, CogVideoX, LTX, Wan ...) from a local
path or hub id.

Loading, dtype, device, offline mode and schedulers are the image generator's
(:class:`generators.diffusers_gen.DiffusersGenerator`); this class only calls the pipeline for
``num_frames`` frames, one prompt per call (video pipelines are memory bound), seeded per item,
and turns its frames into a :class:`generators.video.Video` shown at ``fps``.
torch and diffusers are imported inside methods, as for images.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from generators.base import GenerationItem, GenerationResult, _error_text
from generators.diffusers_gen import DiffusersGenerator
from generators.video import Video

_SHARED = ("num_inference_steps", "guidance_scale", "negative_prompt", "scheduler", "dtype",
           "variant")


class DiffusersVideoGenerator(DiffusersGenerator):
    """Runs a diffusers text-to-video pipeline; results carry a ``video``."""

    name = "diffusers-video"
    media_kind = "video"
    description = (
        "Any diffusers text-to-video pipeline (output with frames) loaded from a local "
        "directory or a Hugging Face hub id (weights_uri). Deterministic per (checkpoint, "
        "prompt, seed, parameters)."
    )
    parameters_schema = {
        **{key: DiffusersGenerator.parameters_schema[key] for key in _SHARED},
        "num_frames": {
            "type": "integer", "default": 16, "minimum": 1, "maximum": 1024,
            "description": "Frames to generate.",
        },
        "fps": {
            "type": "number", "default": 8.0, "minimum": 1.0, "maximum": 120.0,
            "description": "Frame rate the clip is stored and shown at.",
        },
        "width": {**DiffusersGenerator.parameters_schema["width"],
                  "description": "Frame width (pipeline default when null)."},
        "height": {**DiffusersGenerator.parameters_schema["height"],
                   "description": "Frame height (pipeline default when null)."},
    }  # fmt: skip

    def _generate(
        self, items: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        pipe = self.load(params)  # load errors are not per-item: let them raise
        for item in items:
            yield self._run_item(pipe, item, params)

    def _run_item(self, pipe: Any, item: GenerationItem,
                  params: dict[str, Any]) -> GenerationResult:
        start = time.perf_counter()
        metadata = self.base_metadata(item, params)
        try:
            if item.source_image is not None:
                raise ValueError("video editing (a source image or video) is not supported by "
                                 "the diffusers-video generator; text-to-video only")
            frames, extra = self._call(pipe, item, params)
        except Exception as exc:  # one bad item must never abort the batch
            return GenerationResult(item, None, _error_text(exc), time.perf_counter() - start,
                                    metadata)
        metadata.update(extra)
        video = Video(tuple(frames), float(params["fps"]))
        return GenerationResult(item, video.poster, None, time.perf_counter() - start,
                                metadata, video=video)

    def _call(self, pipe: Any, item: GenerationItem,  # type: ignore[override]
              params: dict[str, Any]) -> tuple[list[Image.Image], dict[str, Any]]:
        import diffusers
        import torch

        scheduler = self._set_scheduler(pipe, params["scheduler"])
        accepted = inspect.signature(pipe.__call__).parameters
        device = self.resolve_device()
        kwargs: dict[str, Any] = {
            "prompt": item.prompt,
            "generator": torch.Generator(device).manual_seed(int(item.seed)),
            "num_inference_steps": params["num_inference_steps"],
            "guidance_scale": params["guidance_scale"],
            "num_frames": params["num_frames"],
            "output_type": "np",
        }
        if params["negative_prompt"] is not None:
            kwargs["negative_prompt"] = params["negative_prompt"]
        for key in ("width", "height"):
            if params[key] is not None:
                kwargs[key] = params[key]
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        kwargs = {k: v for k, v in kwargs.items() if has_var_kw or k in accepted}
        with torch.inference_mode():
            output = pipe(**kwargs)
        frames = to_pil_frames(output.frames)
        extra = {
            "generator_version": diffusers.__version__,
            "pipeline": type(pipe).__name__,
            "weights_uri": self.checkpoint.weights_uri,
            "mode": "text-to-video",
            "scheduler": scheduler,
            "device": device,
            "torch_dtype": str(pipe.dtype).removeprefix("torch.") if hasattr(pipe, "dtype")
            else None,
            "width": frames[0].width,
            "height": frames[0].height,
            "frames": len(frames),
            "fps": params["fps"],
        }
        return frames, extra


def to_pil_frames(frames: Any) -> list[Image.Image]:
    """The first clip of a pipeline's ``frames`` as RGB images.

    Pipelines return ``(batch, frames, height, width, channels)`` floats in [0, 1] (numpy or
    torch), a list of such arrays, or lists of PIL images per clip.
    """
    if isinstance(frames, list | tuple):
        first = frames[0]
        if isinstance(first, Image.Image):
            return [f.convert("RGB") for f in frames]
        if isinstance(first, list | tuple):
            return [f.convert("RGB") if isinstance(f, Image.Image) else _to_image(f)
                    for f in first]
        frames = first[None] if np.asarray(first).ndim == 4 else np.asarray(frames)
    if hasattr(frames, "detach"):
        frames = frames.detach().float().cpu().numpy()
    array = np.asarray(frames)
    if array.ndim == 5:
        array = array[0]
    if array.ndim != 4:
        raise RuntimeError(f"unexpected frames shape {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)  # (frames, channels, h, w) -> channels last
    return [_to_image(frame) for frame in array]


def _to_image(frame: Any) -> Image.Image:
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(array).convert("RGB")
