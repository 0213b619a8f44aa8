"""Find generator classes by name.

Three sources, in order of precedence (the first one to claim a name wins, so a
plugin can never silently shadow a built-in):

1. built-ins (``shapes``, ``diffusers``, ``shapes-video``, ``diffusers-video``),
2. installed packages exposing the ``evalhub.generators`` entry-point group,
3. extra dotted paths passed by the caller, e.g. Django's
   ``settings.EVALHUB_GENERATORS = ["pkg.module:Class"]``.

Classes are imported lazily: listing does import them (the schema lives on the
class), but generator modules keep torch & co. out of module level.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from generators.base import CheckpointSpec, Generator, GeneratorError

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownGenerator",
    "available_generators",
    "create_generator",
    "get_generator_class",
    "load_dotted",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "evalhub.generators"

BUILTINS: dict[str, str] = {
    "shapes": "generators.shapes:ShapesGenerator",
    "diffusers": "generators.diffusers_gen:DiffusersGenerator",
    "shapes-video": "generators.shapes_video:ShapesVideoGenerator",
    "diffusers-video": "generators.diffusers_video:DiffusersVideoGenerator",
}


class UnknownGenerator(GeneratorError, LookupError):
    """No generator is registered under the requested name."""


def load_dotted(path: str) -> type[Generator]:
    """Import ``"pkg.module:Class"`` (or ``"pkg.module.Class"``) and check it is a Generator."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"invalid generator path {path!r}; expected 'pkg.module:Class'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    _check_class(obj, path)
    return obj


def _check_class(obj: Any, origin: str) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Generator)):
        raise TypeError(f"{origin} is {obj!r}, not a generators.base.Generator subclass")
    if not isinstance(getattr(obj, "name", None), str) or not obj.name:
        raise TypeError(f"{origin}: generator class must set a non-empty `name`")


def _loaders(extra: Iterable[str] = ()) -> dict[str, Callable[[], type[Generator]]]:
    """Map every known name to a zero-argument loader, without importing anything."""
    loaders: dict[str, Callable[[], type[Generator]]] = {}

    def add(name: str, loader: Callable[[], type[Generator]], origin: str) -> None:
        if name in loaders:
            logger.warning("generator %r from %s ignored: name already registered", name, origin)
            return
        loaders[name] = loader

    for name, path in BUILTINS.items():
        add(name, lambda p=path: load_dotted(p), "built-ins")

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):

        def load_ep(ep: metadata.EntryPoint = ep) -> type[Generator]:
            cls = ep.load()
            _check_class(cls, f"entry point {ep.name}={ep.value}")
            return cls

        add(ep.name, load_ep, f"entry point {ep.value}")

    for path in extra:
        # A dotted path only reveals its name once imported; import errors here
        # are configuration errors and should be loud.
        cls = load_dotted(path)
        add(cls.name, lambda c=cls: c, path)
    return loaders


def get_generator_class(name: str, extra: Iterable[str] = ()) -> type[Generator]:
    """Return the generator class registered as ``name``.

    Raises :class:`UnknownGenerator` (listing the known names) if there is none, and
    :class:`GeneratorError` if its plugin is registered but cannot be imported (a missing
    dependency, a renamed class), so callers handle one kind of error for "cannot generate".
    """
    loaders = _loaders(extra)
    try:
        loader = loaders[name]
    except KeyError:
        known = ", ".join(sorted(loaders)) or "(none)"
        raise UnknownGenerator(f"unknown generator {name!r}; known generators: {known}") from None
    try:
        return loader()
    except (ImportError, AttributeError, TypeError) as exc:
        raise GeneratorError(
            f"generator {name!r} is registered but cannot be loaded: {exc}") from exc


def available_generators(extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Describe every loadable generator for the API, sorted by name.

    Each entry: ``{"name", "description", "parameters"}`` (parameters is the
    class's ``parameters_schema``). A broken plugin is logged and skipped so one
    bad package cannot take the listing down.
    """
    out = []
    for name, loader in sorted(_loaders(extra).items()):
        try:
            cls = loader()
        except Exception:
            logger.exception("could not load generator %r", name)
            continue
        out.append(
            {
                "name": name,
                "description": cls.description,
                "parameters": {k: dict(v) for k, v in cls.parameters_schema.items()},
            }
        )
    return out


def create_generator(
    name: str,
    checkpoint: CheckpointSpec,
    *,
    device: str | None = None,
    extra: Iterable[str] = (),
    **options: Any,
) -> Generator:
    """Instantiate the generator ``name`` for ``checkpoint``.

    ``options`` are generator-specific constructor keywords (e.g. ``offline=True``
    for "diffusers").
    """
    cls = get_generator_class(name, extra)
    return cls(checkpoint, device=device, **options)
