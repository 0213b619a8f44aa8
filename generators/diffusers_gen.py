"""The "diffusers" generator: any ``DiffusionPipeline`` from a local path or hub id.

torch and diffusers are imported inside methods so that importing this module
(e.g. to list generators in the API) stays cheap and works without a GPU stack.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from generators.base import (
    CheckpointSpec,
    GenerationItem,
    GenerationResult,
    Generator,
    InvalidParameters,
    ModelNotFound,
    _error_text,
)

_TRUTHY = {"1", "true", "yes", "on"}


def offline_from_env() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``EVALHUB_OFFLINE`` is set to a truthy value."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUTHY
        for var in ("HF_HUB_OFFLINE", "EVALHUB_OFFLINE")
    )


def hf_cache_dir() -> str:
    """The Hugging Face hub cache directory in effect (for error messages)."""
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # pragma: no cover - huggingface_hub is a diffusers dependency
        return os.path.expanduser("~/.cache/huggingface/hub")


class DiffusersGenerator(Generator):
    """Runs a diffusers pipeline for text-to-image and image-to-image/editing items."""

    name = "diffusers"
    needs_weights = True
    description = (
        "Any diffusers DiffusionPipeline loaded from a local directory or a Hugging Face "
        "hub id (weights_uri). Items with a source image use the pipeline's image-to-image "
        "variant. Deterministic per (checkpoint, prompt, seed, parameters)."
    )
    parameters_schema = {
        "num_inference_steps": {
            "type": "integer", "default": 30, "minimum": 1, "maximum": 1000,
            "description": "Number of denoising steps.",
        },
        "guidance_scale": {
            "type": "number", "default": 7.5, "minimum": 0.0, "maximum": 100.0,
            "description": "Classifier-free guidance scale.",
        },
        "width": {
            "type": "integer", "default": None, "nullable": True, "minimum": 8,
            "maximum": 8192, "multipleOf": 8,
            "description": "Output width (pipeline default when null).",
        },
        "height": {
            "type": "integer", "default": None, "nullable": True, "minimum": 8,
            "maximum": 8192, "multipleOf": 8,
            "description": "Output height (pipeline default when null).",
        },
        "negative_prompt": {
            "type": "string", "default": None, "nullable": True,
            "description": "Negative prompt (ignored by pipelines without one).",
        },
        "strength": {
            "type": "number", "default": 0.8, "minimum": 0.0, "maximum": 1.0,
            "description": "Image-to-image: how much of the source image to re-noise.",
        },
        "scheduler": {
            "type": "string", "default": None, "nullable": True,
            "description": "diffusers scheduler class name, e.g. 'DDIMScheduler' or "
            "'EulerDiscreteScheduler' (pipeline's own scheduler when null).",
        },
        "batch_size": {
            "type": "integer", "default": 1, "minimum": 1, "maximum": 256,
            "description": "Images per pipeline call. Seeding is per image, so batching "
            "does not change an image's noise; only float rounding in batched kernels can "
            "move pixels by 1-2 levels. Use 1 for bit-exact reproducibility.",
        },
        "dtype": {
            "type": "string", "default": "auto", "enum": ["auto", "float16", "bfloat16", "float32"],
            "description": "Weights dtype on CUDA ('auto' = float16). CPU always uses float32.",
        },
        "variant": {
            "type": "string", "default": None, "nullable": True,
            "description": "Weights variant to load, e.g. 'fp16'.",
        },
    }  # fmt: skip

    def __init__(
        self,
        checkpoint: CheckpointSpec,
        *,
        device: str | None = None,
        offline: bool | None = None,
    ) -> None:
        """``offline=None`` follows ``HF_HUB_OFFLINE``/``EVALHUB_OFFLINE``; True forces it."""
        super().__init__(checkpoint, device=device)
        self.offline = offline
        self._pipe: Any = None
        self._pipe_key: tuple[Any, ...] | None = None
        self._img2img: Any = None
        self._base_scheduler_config: Any = None

    # -- parameters ---------------------------------------------------------
    @classmethod
    def check_params(cls, resolved: dict[str, Any]) -> None:
        """Reject scheduler names diffusers does not know (without loading a model)."""
        name = resolved.get("scheduler")
        if name is None:
            return
        import diffusers

        cls = getattr(diffusers, name, None) if name.endswith("Scheduler") else None
        if cls is None or not hasattr(cls, "from_config"):
            raise InvalidParameters(
                f"run parameter 'scheduler': {name!r} is not a diffusers scheduler class "
                "(e.g. 'DDIMScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler')"
            )

    # -- loading ------------------------------------------------------------
    def resolve_device(self) -> str:
        """Explicit device, else CUDA when available, else CPU."""
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolve_dtype(self, requested: str):  # -> torch.dtype
        """float16/bfloat16 only on CUDA; CPU half precision is slow or unsupported."""
        import torch

        if not self.resolve_device().startswith("cuda"):
            return torch.float32
        return {
            "auto": torch.float16,
            "float16": torch.float16,
            "bfloat16": torch.bfloat16,
            "float32": torch.float32,
        }[requested]

    def load(self, params: dict[str, Any] | None = None) -> Any:
        """Load (or return the cached) pipeline for the dtype/variant in ``params``."""
        params = params if params is not None else self.validate_params({})
        dtype = self.resolve_dtype(params["dtype"])
        device = self.resolve_device()
        key = (str(dtype), params["variant"], device)
        if self._pipe is not None and self._pipe_key == key:
            return self._pipe
        self.close()

        from diffusers import DiffusionPipeline

        uri = self.checkpoint.weights_uri
        if not uri:
            raise ModelNotFound(
                f"checkpoint {self.checkpoint.name!r} has no weights_uri; set it to a local "
                "pipeline directory or a Hugging Face hub id"
            )
        local = Path(uri).expanduser()
        is_local = local.exists()
        offline = self.offline if self.offline is not None else offline_from_env()
        kwargs: dict[str, Any] = {_dtype_kwarg(): dtype}
        if params["variant"]:
            kwargs["variant"] = params["variant"]
        if not is_local and offline:
            kwargs["local_files_only"] = True
        try:
            pipe = DiffusionPipeline.from_pretrained(str(local) if is_local else uri, **kwargs)
        except (OSError, ValueError) as exc:
            if is_local:
                raise ModelNotFound(
                    f"could not load a diffusers pipeline from local path {str(local)!r} "
                    f"(checkpoint {self.checkpoint.name!r}): {exc}"
                ) from exc
            mode = "offline mode, " if offline else ""
            raise ModelNotFound(
                f"diffusers model {uri!r} (checkpoint {self.checkpoint.name!r}) could not be "
                f"loaded ({mode}looked in the Hugging Face cache {hf_cache_dir()!r}). Download "
                f"it on a connected machine (`hf download {uri}`) into that cache, or point "
                f"weights_uri at a local directory. Cause: {exc}"
            ) from exc
        pipe = pipe.to(device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        self._pipe, self._pipe_key = pipe, key
        self._base_scheduler_config = getattr(getattr(pipe, "scheduler", None), "config", None)
        return pipe

    def _image_pipe(self, pipe: Any) -> Any:
        """A pipeline accepting ``image=``: the pipeline itself, or its img2img sibling."""
        if "image" in inspect.signature(pipe.__call__).parameters:
            return pipe
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            try:
                self._img2img = AutoPipelineForImage2Image.from_pipe(pipe)
            except Exception as exc:
                raise ValueError(
                    f"pipeline {type(pipe).__name__} has no image-to-image variant: {exc}"
                ) from exc
            if hasattr(self._img2img, "set_progress_bar_config"):
                self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _set_scheduler(self, pipe: Any, name: str | None) -> str | None:
        """Install a fresh scheduler ``name`` (default: the pipeline's own class).

        Always rebuilt from the checkpoint's original scheduler config: cheap, and
        it guarantees no state or previous run's choice leaks into this call.
        """
        if self._base_scheduler_config is None:
            return None
        import diffusers

        class_name = name or self._base_scheduler_config.get("_class_name")
        cls = getattr(diffusers, class_name, None) if class_name else None
        cls = cls or type(pipe.scheduler)
        pipe.scheduler = cls.from_config(self._base_scheduler_config)
        return cls.__name__

    # -- generation ---------------------------------------------------------
    def _generate(
        self, items: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        pipe = self.load(params)  # load errors are not per-item: let them raise
        batch: list[GenerationItem] = []
        for item in items:
            # Text-to-image and editing items cannot share a call, nor can source
            # images of different sizes; flushing on change keeps result order.
            if batch and (
                _batch_key(batch[0]) != _batch_key(item) or len(batch) >= params["batch_size"]
            ):
                yield from self._run_batch(pipe, batch, params)
                batch = []
            batch.append(item)
        if batch:
            yield from self._run_batch(pipe, batch, params)

    def _run_batch(
        self, pipe: Any, batch: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        start = time.perf_counter()
        try:
            images, extra = self._call(pipe, batch, params)
        except Exception as exc:
            if len(batch) > 1:
                # Retry one by one to pin the failure on the responsible item(s).
                for item in batch:
                    yield from self._run_batch(pipe, [item], params)
                return
            item = batch[0]
            yield GenerationResult(
                item,
                None,
                _error_text(exc),
                time.perf_counter() - start,
                self.base_metadata(item, params),
            )
            return
        elapsed = (time.perf_counter() - start) / len(batch)
        for index, (item, image) in enumerate(zip(batch, images, strict=True)):
            metadata = self.base_metadata(item, params)
            metadata.update(extra)
            nsfw = extra.get("nsfw_content_detected")
            if isinstance(nsfw, list):
                metadata["nsfw_content_detected"] = bool(nsfw[index])
            yield GenerationResult(item, image, None, elapsed, metadata)

    def _call(
        self, pipe: Any, batch: list[GenerationItem], params: dict[str, Any]
    ) -> tuple[list[Image.Image], dict[str, Any]]:
        import diffusers
        import torch

        edit = batch[0].source_image is not None
        if edit:
            pipe = self._image_pipe(pipe)
        scheduler = self._set_scheduler(pipe, params["scheduler"])
        accepted = inspect.signature(pipe.__call__).parameters
        device = self.resolve_device()
        # One generator per image: each image's initial noise depends only on its
        # own seed, so batch composition does not change it.
        generators = [torch.Generator(device).manual_seed(int(it.seed)) for it in batch]
        kwargs: dict[str, Any] = {
            "prompt": [it.prompt for it in batch],
            "generator": generators,
            "num_inference_steps": params["num_inference_steps"],
            "guidance_scale": params["guidance_scale"],
            "output_type": "pil",
        }
        if params["negative_prompt"] is not None:
            kwargs["negative_prompt"] = [params["negative_prompt"]] * len(batch)
        size = (params["width"], params["height"])
        if edit:
            images = [it.source_image.convert("RGB") for it in batch]  # type: ignore[union-attr]
            if all(size):
                images = [im.resize(size, Image.Resampling.LANCZOS) for im in images]
            kwargs["image"] = images
            if "strength" in accepted:
                kwargs["strength"] = params["strength"]
        for key, value in (("width", size[0]), ("height", size[1])):
            if value is not None:
                kwargs[key] = value
        # Only pass what this pipeline understands (e.g. no guidance for some).
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        kwargs = {k: v for k, v in kwargs.items() if has_var_kw or k in accepted}
        with torch.inference_mode():
            output = pipe(**kwargs)
        images_out = list(output.images)
        if len(images_out) != len(batch):
            raise RuntimeError(f"pipeline returned {len(images_out)} images for {len(batch)}")
        extra: dict[str, Any] = {
            "generator_version": diffusers.__version__,
            "pipeline": type(pipe).__name__,
            "weights_uri": self.checkpoint.weights_uri,
            "mode": "image-to-image" if edit else "text-to-image",
            "scheduler": scheduler,
            "device": device,
            "torch_dtype": str(pipe.dtype).removeprefix("torch.")
            if hasattr(pipe, "dtype")
            else None,
            "width": images_out[0].width,
            "height": images_out[0].height,
        }
        nsfw = getattr(output, "nsfw_content_detected", None)
        if nsfw is not None:
            extra["nsfw_content_detected"] = list(nsfw)
        return images_out, extra

    def close(self) -> None:
        """Drop the cached pipeline(s) and free CUDA memory."""
        had_pipe = self._pipe is not None
        self._pipe = self._img2img = self._pipe_key = self._base_scheduler_config = None
        if had_pipe:
            import gc

            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except Exception:  # pragma: no cover - best effort
                pass


def _dtype_kwarg() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype``; use whichever this version wants."""
    try:
        from diffusers.utils.deprecation_utils import _TORCH_DTYPE_DEPRECATION_MESSAGE  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _batch_key(item: GenerationItem) -> tuple[Any, ...]:
    if item.source_image is None:
        return ("t2i",)
    size = getattr(item.source_image, "size", None)
    return ("i2i", size)
