"""A file lock per (kind, blob) across the processes of one host (web workers and Celery)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings


@contextmanager
def blob_lock(kind: str, sha256: str) -> Iterator[None]:
    """Hold ``var/locks/<kind>/<sha256>.lock`` exclusively while the block runs.

    Builds of one derivative are serialised per host so that a worker and a web process that
    reach it at once write it once; across hosts the builds are idempotent instead.
    """
    lock_dir = Path(settings.VAR_DIR) / "locks" / kind
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{sha256}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
