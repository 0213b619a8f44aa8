"""Content-addressed image storage through Django's storage API, and deleting the blobs
nothing refers to any more (with their files)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction

from evalhub.blobs.models import ImageBlob, VideoBlob
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


# --- deleting blobs nothing refers to ------------------------------------------------------

#: The task that deletes the blobs a workspace delete may have left unreferenced.
DELETE_UNREFERENCED_TASK = "evalhub.blobs.delete_unreferenced"


@dataclass(frozen=True)
class BlobsDeleted:
    """What :func:`blobs_delete_unreferenced` removed: blob rows and storage files."""

    images: int
    videos: int
    files: int


def _holders(model: type[models.Model]) -> list[str]:
    """Query names of the relations whose rows keep a ``model`` blob alive: every foreign key
    and many-to-many relation pointing at it except those that cascade (a cascading row is a
    by-product of the blob, deleted with it), found from the models so that a relation added
    later counts too."""
    return [rel.name for rel in model._meta.related_objects
            if rel.many_to_many or rel.on_delete is not models.CASCADE]


def unreferenced(model: type[models.Model], ids: Collection[int]) -> list[int]:
    """Those of ``ids`` whose ``model`` row exists and that no row refers to (:func:`_holders`;
    one query per relation)."""
    held: set[int] = set()
    for name in _holders(model):
        held.update(model.objects.filter(pk__in=ids, **{f"{name}__isnull": False})
                    .values_list("pk", flat=True))
    return sorted(set(model.objects.filter(pk__in=ids).values_list("pk", flat=True)) - held)


def _delete_files(names: Iterable[str]) -> int:
    removed = 0
    for name in dict.fromkeys(n for n in names if n):
        if default_storage.exists(name):
            default_storage.delete(name)
            removed += 1
    return removed


def _image_files(blob: ImageBlob) -> int:
    """The original, preview, display derivative (as stored, and at its computed name in case
    its row was never updated) and Deep Zoom tiles of ``blob``."""
    from evalhub.blobs.display import blob_display_path
    from evalhub.blobs.tiles import base_path, delete_tree

    removed = _delete_files([blob.file.name, blob.preview.name, blob.display.name,
                             blob_display_path(blob)])
    delete_tree(base_path(blob.sha256))
    return removed


def _video_files(video: VideoBlob) -> int:
    """The original, the VP9 rendition and the thumbnail strip of ``video``."""
    from evalhub.blobs.video_display import rendition_path, strip_path  # PyAV: workers only

    return _delete_files([video.file.name, video.rendition.name, video.thumbnails.name,
                          rendition_path(video), strip_path(video)])


def blobs_delete_unreferenced(*, image_ids: Iterable[int] = (), video_ids: Iterable[int] = (),
                              batch: int = 500) -> BlobsDeleted:
    """Delete those of the given blobs that no row refers to any more, rows and files.

    Blobs are content-addressed and shared: a deleted run's images may be another run's too,
    a prompt's source image or a reference set's member, so only the ones nothing refers to go
    (:func:`unreferenced`). Videos first, since a video refers to its poster image. Called by
    the worker task the workspace's deletes queue once their transaction has committed.

    Each batch is one transaction: the rows are locked, checked, deleted, and their files
    removed before it commits. A concurrent import of the same bytes either committed its
    reference first (the blob is kept), or finds the row until we commit and then fails on its
    foreign key (the import is refused, nothing half-stored); it can never find the row gone
    and the file still there, write nothing, and be left with our deletion of the file.
    """
    videos, video_files = _delete_unreferenced_rows(VideoBlob, video_ids, _video_files, batch)
    images, image_files = _delete_unreferenced_rows(
        ImageBlob, {*image_ids, *(v.poster_id for v in videos)}, _image_files, batch)
    return BlobsDeleted(images=len(images), videos=len(videos),
                        files=video_files + image_files)


def _delete_unreferenced_rows(model: type[models.Model], ids: Iterable[int],
                              files_of: Callable[[Any], int], batch: int
                              ) -> tuple[list[Any], int]:
    """Delete the rows of ``model`` among ``ids`` that nothing refers to, ``batch`` at a time,
    each batch locked, checked and deleted with its files (``files_of`` deletes one row's and
    says how many) in one transaction. Returns the deleted rows and the files deleted."""
    ordered = sorted(set(ids))
    deleted: list[Any] = []
    files = 0
    for start in range(0, len(ordered), batch):
        with transaction.atomic():
            rows = list(model.objects.select_for_update().filter(
                pk__in=ordered[start:start + batch]).order_by("pk"))
            gone = set(unreferenced(model, [row.pk for row in rows]))
            doomed = [row for row in rows if row.pk in gone]
            model.objects.filter(pk__in=gone).delete()
            files += sum(files_of(row) for row in doomed)
            deleted += doomed
    return deleted, files
