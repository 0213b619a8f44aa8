"""Plugin interface every EvalHub image generator implements.

The Django side builds a :class:`CheckpointSpec` from a ``Checkpoint`` row,
instantiates a :class:`Generator` subclass (looked up in :mod:`generators.registry`)
and streams :class:`GenerationResult` objects out of :meth:`Generator.generate`.
This module deliberately imports nothing heavier than Pillow so that listing
generators (e.g. for the REST API) never pulls in torch.
"""

from __future__ import annotations

import io
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

if TYPE_CHECKING:
    from generators.video import Video

__all__ = [
    "CheckpointSpec",
    "GenerationItem",
    "GenerationResult",
    "Generator",
    "GeneratorError",
    "InvalidParameters",
    "ModelNotFound",
    "encode_png",
    "validate_params",
]


class GeneratorError(Exception):
    """Base class of the errors raised by generators (as opposed to per-item errors)."""


class InvalidParameters(GeneratorError, ValueError):
    """Parameters (run or checkpoint) do not match the generator's schema."""


class ModelNotFound(GeneratorError, FileNotFoundError):
    """The checkpoint's weights could not be found (e.g. offline and not cached)."""


@dataclass(frozen=True)
class CheckpointSpec:
    """What a Django ``Checkpoint`` row provides to a generator."""

    name: str
    # Local path or hub id (diffusers); unused by the offline "shapes" generator.
    weights_uri: str = ""
    # Checkpoint-level defaults, e.g. ``{"quality": 0.7}``; run params override them.
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationItem:
    """One image to produce."""

    key: str  # opaque id for the caller, e.g. "<prompt_id>:<seed>"
    prompt: str
    seed: int
    source_image: Image.Image | None = None  # set for editing / image-to-image


@dataclass
class GenerationResult:
    """Outcome of one item: either ``image`` or ``error`` is set.

    A video generator also sets ``video`` (frames and frame rate, generators/video.py); its
    ``image`` is then the clip's poster, the middle frame.
    """

    item: GenerationItem
    image: Image.Image | None
    error: str | None
    elapsed_s: float
    metadata: dict[str, Any] = field(default_factory=dict)
    video: Video | None = None

    @property
    def ok(self) -> bool:
        """True when the item produced an image (and, for a video generator, its video)."""
        return self.error is None and self.image is not None

    def png_bytes(self) -> bytes:
        """The image encoded as PNG, byte-identical for identical images."""
        if self.image is None:
            raise ValueError(f"item {self.item.key!r} has no image: {self.error}")
        return encode_png(self.image)


def encode_png(image: Image.Image) -> bytes:
    """Encode ``image`` as PNG deterministically.

    PNG encoding is deterministic for fixed zlib settings; we pin them (and drop
    ``info`` chunks such as timestamps) so equal pixels always give equal bytes.
    """
    buf = io.BytesIO()
    clean = image.convert("RGB") if image.mode not in ("RGB", "RGBA", "L") else image
    clean.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- params

_TYPE_NAMES = {"integer", "number", "string", "boolean"}


def _coerce(name: str, value: Any, spec: Mapping[str, Any], source: str) -> Any:
    """Check one value against its schema entry and return it normalised."""
    kind = spec.get("type", "string")
    where = f"{source} parameter {name!r}"
    if value is None:
        if spec.get("nullable", False):
            return None
        raise InvalidParameters(f"{where} must not be null (expected {kind})")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidParameters(f"{where} must be a boolean, got {value!r}")
        return value
    if kind == "integer":
        # bool is an int subclass; accept integral floats because JSON clients
        # sometimes send 30.0 for 30.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParameters(f"{where} must be an integer, got {value!r}")
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise InvalidParameters(f"{where} must be an integer, got {value!r}")
        value = int(value)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParameters(f"{where} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise InvalidParameters(f"{where} must be finite, got {value!r}")
    elif kind == "string":
        if not isinstance(value, str):
            raise InvalidParameters(f"{where} must be a string, got {value!r}")
    else:  # pragma: no cover - schema bug, not user error
        raise InvalidParameters(f"{where} has unsupported schema type {kind!r}")

    if "enum" in spec and value not in spec["enum"]:
        choices = ", ".join(repr(c) for c in spec["enum"])
        raise InvalidParameters(f"{where} must be one of {choices}, got {value!r}")
    if "minimum" in spec and value < spec["minimum"]:
        raise InvalidParameters(f"{where} must be >= {spec['minimum']}, got {value!r}")
    if "maximum" in spec and value > spec["maximum"]:
        raise InvalidParameters(f"{where} must be <= {spec['maximum']}, got {value!r}")
    if "multipleOf" in spec and value % spec["multipleOf"] != 0:
        raise InvalidParameters(
            f"{where} must be a multiple of {spec['multipleOf']}, got {value!r}"
        )
    return value


def validate_params(
    schema: Mapping[str, Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolve parameters: schema defaults < ``defaults`` (checkpoint) < ``params`` (run).

    Every key must exist in ``schema``; values are type/range checked and
    normalised (e.g. ints become floats for ``number``). Raises
    :class:`InvalidParameters` naming every offending key (unknown keys, then each value
    refused, joined by "; "), so one answer lists all there is to fix.
    """
    resolved: dict[str, Any] = {k: spec.get("default") for k, spec in schema.items()}
    problems: list[str] = []
    for source, values in (("checkpoint", defaults or {}), ("run", params or {})):
        if not isinstance(values, Mapping):
            problems.append(f"{source} parameters must be a mapping, got {values!r}")
            continue
        unknown = sorted(set(values) - set(schema))
        if unknown:
            known = ", ".join(sorted(schema)) or "(none)"
            problems.append(f"unknown {source} parameter(s) {', '.join(map(repr, unknown))}; "
                            f"known parameters: {known}")
        for key, value in values.items():
            if key not in schema:
                continue
            try:
                resolved[key] = _coerce(key, value, schema[key], source)
            except InvalidParameters as exc:
                problems.append(str(exc))
    if problems:
        raise InvalidParameters("; ".join(problems))
    return resolved


# --------------------------------------------------------------------------- generator


class Generator(ABC):
    """Base class of image generators.

    Subclasses set the class attributes and implement :meth:`_generate`. They
    get parameter resolution, per-item error isolation helpers and context
    manager support for free.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    # "image", or "video" for generators whose results carry a ``video``.
    media_kind: ClassVar[str] = "image"
    # Whether a checkpoint of this generator must name its weights (``weights_uri``: a local
    # folder or a hub id); checked when the checkpoint is written, not at the first batch.
    needs_weights: ClassVar[bool] = False
    # name -> {"type", "default", "description", optional "minimum"/"maximum"/
    # "enum"/"nullable"/"multipleOf"}; see validate_params.
    parameters_schema: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, checkpoint: CheckpointSpec, *, device: str | None = None) -> None:
        self.checkpoint = checkpoint
        self.device = device
        # Fail fast on bad checkpoint defaults instead of on the first batch.
        self.validate_params({})

    # -- parameters ---------------------------------------------------------
    @classmethod
    def resolve_params(
        cls,
        params: Mapping[str, Any] | None = None,
        checkpoint_parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Validate without an instance (e.g. when a run is created in the API).

        Same as :meth:`validate_params` but takes the checkpoint defaults
        explicitly; includes the generator-specific :meth:`check_params`.
        """
        resolved = validate_params(cls.parameters_schema, params, checkpoint_parameters)
        cls.check_params(resolved)
        return resolved

    def validate_params(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Merge schema defaults, checkpoint defaults and ``params``; validate all."""
        return self.resolve_params(params, self.checkpoint.parameters)

    @classmethod  # noqa: B027 - optional hook, deliberately empty
    def check_params(cls, resolved: dict[str, Any]) -> None:
        """Hook for cross-field or generator-specific checks; raise InvalidParameters.

        A classmethod so parameters can be checked before any model is loaded.
        """

    # -- generation ---------------------------------------------------------
    def generate(
        self, items: Sequence[GenerationItem], params: Mapping[str, Any] | None = None
    ) -> Iterator[GenerationResult]:
        """Yield one result per item, in order.

        Invalid ``params`` raise :class:`InvalidParameters` before any work (the
        whole batch is unusable); a failing *item* yields a result with
        ``error`` set and the remaining items still run.
        """
        resolved = self.validate_params(params)
        return self._generate(list(items), resolved)

    @abstractmethod
    def _generate(
        self, items: list[GenerationItem], params: dict[str, Any]
    ) -> Iterator[GenerationResult]:
        """Produce results for already-validated ``params``."""

    def base_metadata(self, item: GenerationItem, params: Mapping[str, Any]) -> dict[str, Any]:
        """Metadata common to all generators (JSON-serialisable)."""
        return {
            "generator": self.name,
            "generator_version": getattr(self, "version", "1"),
            "checkpoint": self.checkpoint.name,
            "seed": item.seed,
            "params": dict(params),
        }

    def run_item(
        self,
        item: GenerationItem,
        params: Mapping[str, Any],
        fn: Callable[[GenerationItem], tuple[Image.Image, dict[str, Any]]],
    ) -> GenerationResult:
        """Call ``fn(item)`` and wrap its outcome, turning exceptions into error results."""
        start = time.perf_counter()
        metadata = self.base_metadata(item, params)
        try:
            image, extra = fn(item)
        except Exception as exc:  # one bad item must never abort the batch
            return GenerationResult(
                item, None, _error_text(exc), time.perf_counter() - start, metadata
            )
        metadata.update(extra)
        return GenerationResult(item, image, None, time.perf_counter() - start, metadata)

    def run_video_item(
        self,
        item: GenerationItem,
        params: Mapping[str, Any],
        fn: Callable[[GenerationItem], tuple[Video, dict[str, Any]]],
    ) -> GenerationResult:
        """:meth:`run_item` for video generators: ``fn`` returns the clip; the result's
        ``image`` is its poster (the middle frame)."""
        start = time.perf_counter()
        metadata = self.base_metadata(item, params)
        try:
            video, extra = fn(item)
        except Exception as exc:  # one bad item must never abort the batch
            return GenerationResult(
                item, None, _error_text(exc), time.perf_counter() - start, metadata
            )
        metadata.update(extra)
        return GenerationResult(item, video.poster, None, time.perf_counter() - start,
                                metadata, video=video)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (models, GPU memory). Safe to call more than once."""

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
