"""Undo file writes when the database transaction they belong to fails."""

from __future__ import annotations

from types import TracebackType

from django.core.files.storage import default_storage


class WrittenFiles:
    """Context manager that records storage paths and deletes them if the block raises.

    Use it *outside* ``transaction.atomic()`` so that it sees the rollback's exception.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []

    def add(self, path: str) -> None:
        self.paths.append(path)

    def __enter__(self) -> WrittenFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            return
        from evalhub.blobs.models import ImageBlob, VideoBlob

        for path in self.paths:
            # A concurrent import of the same bytes may have committed a row for this file.
            if not (ImageBlob.objects.filter(file=path).exists()
                    or VideoBlob.objects.filter(file=path).exists()):
                default_storage.delete(path)
