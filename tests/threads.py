"""Work run in real threads, each with its own Django database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections


def race(functions: Sequence[Callable[[], Any]], timeout_s: float = 30) -> list[Any]:
    """Run the functions at the same moment in threads; return their results, or the exception
    each raised (the outcome under test may be one). Each thread closes its connections."""
    barrier = threading.Barrier(len(functions))
    results: list[Any] = [None] * len(functions)

    def run(index: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = fn()
        except Exception as exc:  # the outcome under test may be an exception
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    return results
