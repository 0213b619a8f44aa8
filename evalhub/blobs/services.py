"""Content-addressed image storage through Django's storage API."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.validation import ImageInfo, inspect_image


def blob_path(info: ImageInfo) -> str:
    """``blobs/ab/cd/abcd...ef.png``: two fan-out levels keep directories small."""
    sha = info.sha256
    return f"blobs/{sha[:2]}/{sha[2:4]}/{sha}.{info.extension}"


def image_inspect(data: bytes, *, name: str) -> ImageInfo:
    """:func:`inspect_image` with the deployment's limits."""
    return inspect_image(
        data,
        name=name,
        max_pixels=settings.EVALHUB_MAX_IMAGE_PIXELS,
        max_bytes=settings.EVALHUB_MAX_IMAGE_BYTES,
    )


def blob_store(
    *, data: bytes, info: ImageInfo, on_new_file: Callable[[str], None] | None = None
) -> ImageBlob:
    """Return the blob for ``data``, writing the file only if these bytes are new.

    ``on_new_file`` is told the storage path of every file written, so an import that fails
    later can delete what it wrote. Call inside the caller's transaction.
    """
    existing = ImageBlob.objects.filter(sha256=info.sha256).first()
    if existing is not None:
        return existing
    path = blob_path(info)
    if not default_storage.exists(path):
        saved = default_storage.save(path, ContentFile(data))
        if on_new_file is not None:
            on_new_file(saved)
        path = saved
    # get_or_create (savepoint + retry on IntegrityError) because a concurrent import of the
    # same bytes may insert the row between our check and our insert.
    blob, _ = ImageBlob.objects.get_or_create(
        sha256=info.sha256,
        defaults={
            "file": path,
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "mode": info.mode,
            "size_bytes": info.size_bytes,
        },
    )
    return blob


def blob_store_bytes(data: bytes, *, name: str) -> ImageBlob:
    """Validate and store one image (generated images, single uploads)."""
    return blob_store(data=data, info=image_inspect(data, name=name))
