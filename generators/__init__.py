"""EvalHub image generators: plugin interface, registry and built-in generators.

Framework-agnostic (no Django). Typical use::

    from generators import CheckpointSpec, GenerationItem, create_generator

    gen = create_generator("shapes", CheckpointSpec("v1", parameters={"quality": 0.7}))
    for result in gen.generate([GenerationItem("p1:0", "two red circles", seed=0)], {}):
        png = result.png_bytes() if result.ok else None
"""

from generators.base import (
    CheckpointSpec,
    GenerationItem,
    GenerationResult,
    Generator,
    GeneratorError,
    InvalidParameters,
    ModelNotFound,
    encode_png,
    validate_params,
)
from generators.registry import (
    UnknownGenerator,
    available_generators,
    create_generator,
    get_generator_class,
)

__all__ = [
    "CheckpointSpec",
    "GenerationItem",
    "GenerationResult",
    "Generator",
    "GeneratorError",
    "InvalidParameters",
    "ModelNotFound",
    "UnknownGenerator",
    "available_generators",
    "create_generator",
    "encode_png",
    "get_generator_class",
    "validate_params",
]
