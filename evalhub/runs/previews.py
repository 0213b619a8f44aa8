"""When a run's image shows its preview: once the preview task queued for that image has run.

Previews belong to blobs, which are content-addressed and shared by every project: the bytes
another project imported before already have one. Were an image's preview shown as soon as its
blob had one, a file already held elsewhere would show it right after the import while a new
file shows it seconds later, once a worker has made it; an importer would learn that some other
project holds those bytes (docs/security.md, "Anonymity across projects"). So every image an
import or a generation stores gets its own task (:data:`PREVIEWS_TASK`), whatever its blob
holds; the task makes the blob's preview if it is missing and then marks the image
(``Image.preview_ready``). ``Image.preview`` is the one rule that reads the mark, for the API,
the gallery and the media view alike (blobs/access.py ``blob_preview_access``).
"""

from __future__ import annotations

from collections.abc import Sequence

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.core.queueing import enqueue_on_commit
from evalhub.runs.models import Image

#: The task that makes the previews of stored images and marks them ready (``default`` queue).
PREVIEWS_TASK = "evalhub.runs.make_previews"
#: Images per task: an import of thousands is spread over the workers, and each task's id list
#: stays short.
IMAGES_PER_TASK = 500


def images_after_store(image_ids: Sequence[int]) -> None:
    """Queue the preview tasks of newly stored images, every one of them (a blob that has a
    preview already is no exception: see the module doc), once the transaction commits."""
    ids = list(image_ids)
    for start in range(0, len(ids), IMAGES_PER_TASK):
        enqueue_on_commit(PREVIEWS_TASK, ids[start:start + IMAGES_PER_TASK])


def images_make_previews(image_ids: Sequence[int]) -> int:
    """Make the missing previews of the given images' blobs and mark those images ready;
    returns how many images were marked.

    Idempotent (a redelivered task finds them marked). An image is marked only once its
    blob's preview exists, so a blob that fails stops the task before its images, not after.
    """
    pending = Image.objects.filter(pk__in=list(image_ids), preview_ready=False)
    blob_ids = set(pending.values_list("blob_id", flat=True))
    done: list[int] = []
    try:
        for blob in ImageBlob.objects.filter(pk__in=blob_ids).only("id", "sha256", "file",
                                                                    "preview"):
            blob_make_preview(blob)
            done.append(blob.pk)
    finally:
        marked = pending.filter(blob_id__in=done).update(preview_ready=True) if done else 0
    return marked
