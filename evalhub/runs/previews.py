"""When a run's image shows its preview: once the preview task queued for that image has run.

Previews belong to blobs, which are content-addressed and shared by every project: the bytes
another project imported before already have one. Were an image's preview shown as soon as its
blob had one, a file already held elsewhere would show it right after the import while a new
file shows it seconds later, once a worker has made it; an importer would learn that some other
project holds those bytes (docs/security.md, "Anonymity across projects"). So every image an
import or a generation stores gets its own task (:data:`PREVIEWS_TASK`), whatever its blob
holds; the task makes the blob's preview if it is missing and then marks the image
(``Image.preview_ready``). ``runs.models.PREVIEW_SHOWN`` is the one rule that reads the mark,
for the API, the gallery (``Image.preview``) and the media view alike (blobs/access.py
``blob_preview_access``, through ``Image.objects.preview_shown()``). The images of a run get no
other preview task: the blob-level one (blobs/after_store.py) is left to the blobs no image
holds, reference sets' and prompts' (two tasks for one new file would decode it twice).

A task can be lost (an old worker discards a task name it does not know during a deploy, a
broker can lose a message): :func:`images_queue_missing_previews` (``manage.py
make_image_previews``) queues the tasks again for the images that show no preview.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.core.queueing import Queued, enqueue_batches, enqueue_pk_pages
from evalhub.projects.models import Project
from evalhub.runs.models import Image

#: The task that makes the previews of stored images and marks them ready (``default`` queue).
PREVIEWS_TASK = "evalhub.runs.make_previews"
#: Images per task: an import of thousands is spread over the workers, and each task's id list
#: stays short.
IMAGES_PER_TASK = 500


def images_after_store(image_ids: Sequence[int]) -> None:
    """Queue the preview tasks of newly stored images, every one of them (a blob that has a
    preview already is no exception: see the module doc), :data:`IMAGES_PER_TASK` each, once
    the transaction commits."""
    enqueue_batches(PREVIEWS_TASK, image_ids, IMAGES_PER_TASK)


def images_queue_missing_previews(*, project: Project | None = None) -> Queued:
    """Queue the preview tasks of the images (of ``project``, or of every project) that show
    no preview (``ImageQuerySet.preview_missing``: not marked yet, or marked while their blob
    has none), :data:`IMAGES_PER_TASK` images each, as an import does.

    The repair for lost tasks (``manage.py make_image_previews``; docs/operations.md): the
    tasks skip the images that show their preview by the time they run, so running it again,
    or while earlier tasks are still queued, only costs those tasks. Outside a transaction each
    task is sent at once, page by page, so the ids of a large installation are never held
    whole.
    """
    missing = Image.objects.preview_missing()
    if project is not None:
        missing = missing.filter(run__project=project)
    return enqueue_pk_pages(PREVIEWS_TASK, missing.order_by("pk").values_list("pk", flat=True),
                            IMAGES_PER_TASK)


def images_make_previews(image_ids: Sequence[int]) -> int:
    """Make the missing previews of the given images' blobs and mark those images ready;
    returns how many of the images that showed no preview show it now.

    Idempotent (a redelivered task finds them shown). An image is marked only once its
    blob's preview exists, so a blob that fails stops the task before its images, not after.
    An image marked ready whose blob has no preview (its blob's task was lost before images
    had their own) gets it too.
    """
    pending = list(Image.objects.filter(pk__in=list(image_ids)).preview_missing()
                   .values_list("pk", "blob_id"))
    done: set[int] = set()
    try:
        for blob in ImageBlob.objects.filter(pk__in={blob_id for _, blob_id in pending}).only(
                "id", "sha256", "file", "preview"):
            blob_make_preview(blob)
            done.add(blob.pk)
    finally:
        shown = [pk for pk, blob_id in pending if blob_id in done]
        if shown:
            Image.objects.filter(pk__in=shown, preview_ready=False).update(preview_ready=True)
    return len(shown)
