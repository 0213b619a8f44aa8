"""Run an iterator in a background thread, a bounded number of items ahead.

The COPY source spends most of its time waiting for PostgreSQL (libpq releases the GIL
while it waits) and parsing CSV in Arrow (which releases it too); the formats spend theirs
in Arrow kernels and file writes. Overlapping the two uses both cores of a small machine.
Memory stays bounded: at most ``ahead`` items wait in the queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], ahead: int = 2) -> Iterator[T]:
    """Yield ``items`` in order; they are produced in a thread. Errors are re-raised here.

    When the consumer stops early, the producer is told to stop and ``items`` is closed in
    its thread (so a COPY is cancelled on the connection it runs on).
    """
    box: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
        except BaseException as error:
            put(error)
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put(_END)

    worker = threading.Thread(target=produce, name="export-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
