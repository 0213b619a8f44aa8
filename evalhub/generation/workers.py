"""Generator instances kept alive inside a worker process.

Loading a diffusion pipeline takes seconds to minutes, so a worker keeps the most recent
one and reuses it for the next batch of the same checkpoint.
"""

from __future__ import annotations

import threading

from django.conf import settings

from generators import CheckpointSpec, Generator, create_generator

_lock = threading.Lock()
_cached: tuple[tuple, Generator] | None = None


def cached_generator(name: str, spec: CheckpointSpec, *, checkpoint_id: int) -> Generator:
    global _cached
    key = (name, checkpoint_id, spec.weights_uri, repr(sorted(spec.parameters.items())))
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
        if _cached is not None:
            _cached[1].close()
            _cached = None
        generator = create_generator(
            name, spec, device=settings.EVALHUB_GENERATION_DEVICE or None,
            extra=settings.EVALHUB_GENERATORS,
        )
        _cached = (key, generator)
        return generator
