"""Write to a sink in a background thread, so the next batch is built while one is written.

A JSONL export writes about 800 bytes per row; copying them into the page cache takes
about as long as building them, and file writes release the GIL, so on a machine with two
cores the two overlap. Writes happen in order, one at a time; at most ``ahead`` are waiting
(bounded memory). The data handed to ``write`` must not change afterwards (Arrow buffers
do not). An error in the thread is raised by the next ``write`` or by ``close``.
"""

from __future__ import annotations

import queue
import threading
from typing import IO, Any

_END = object()


class BackgroundWriter:
    """Writes what ``write`` is given to ``sink`` in a thread; ``close`` waits for the end."""

    def __init__(self, sink: IO[bytes], ahead: int = 2) -> None:
        self._sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._error: BaseException | None = None  # raised once, then None
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not _END:
            if not self._failed:  # after a failure, drain without writing
                try:
                    self._sink.write(data)
                except BaseException as error:  # re-raised in the caller's thread
                    self._error, self._failed = error, True

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, data: Any) -> None:
        self._raise()
        self._queue.put(data)

    def close(self) -> None:
        """Wait until everything is written; raise the thread's error, if any."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self._raise()
