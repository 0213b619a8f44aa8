"""Work queued for stored image files: the display derivative annotators receive, previews for
lists, tiles for huge images.

One rule (:data:`BLOB_WORK`) says which kinds of work a blob gets, which blobs each applies
to, how to tell a blob that has it, and how it is queued and batched. New blobs get all of it
(imports, prompt sources); blobs stored before get what they lack (a generation run's outputs,
queued again when the run closes: generation/services.py): both through
:func:`blobs_after_store`, so a new kind of derivative is added here once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from evalhub.blobs.display import MAKE_BATCH, MAKE_TASK, display_current_q
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import BUILD_TASK, BUILDS_PER_TASK, built_q, large_q
from evalhub.core.bounded import in_chunks
from evalhub.core.queueing import enqueue_batches

PREVIEWS_TASK = "evalhub.blobs.make_previews"
#: Blobs per preview message (a preview is a few milliseconds to a second's work).
PREVIEWS_PER_TASK = 500


@dataclass(frozen=True)
class BlobWork:
    """One kind of work a stored blob gets: the task that does it (it skips blobs that have
    it by the time it runs), how many blobs per message, which blobs it applies to (``None``:
    every blob) and which have it done (the database side of the task's own skip)."""

    task: str
    per_task: int
    applies: Callable[[], Q] | None
    done: Callable[[], Q]


def _preview_made_q() -> Q:
    """Blobs that have their preview (blobs/previews.py ``blob_make_preview``)."""
    return ~Q(preview="")


DISPLAYS = BlobWork(MAKE_TASK, MAKE_BATCH, None, display_current_q)
PREVIEWS = BlobWork(PREVIEWS_TASK, PREVIEWS_PER_TASK, None, _preview_made_q)
PYRAMIDS = BlobWork(BUILD_TASK, BUILDS_PER_TASK, large_q, built_q)
#: Every kind, in the order its tasks are sent.
BLOB_WORK = (DISPLAYS, PREVIEWS, PYRAMIDS)


def blobs_after_store(blob_ids: Sequence[int] | QuerySet, *, previews: bool = True,
                      lacking_only: bool = False) -> None:
    """Queue display derivatives and previews, and Deep Zoom pyramids for images above the
    tiling threshold (``default`` queue), once the current transaction commits, so the first
    annotator to open an image does not wait for them; a campaign with such images is served
    once they exist (campaigns/building/images.py).

    ``previews=False`` for the blobs of a run's images (an import, a generation): each image's
    own task makes its blob's preview (runs/previews.py ``images_after_store``), and a second
    task here would decode the same file again and race it.

    ``lacking_only``: the blobs were stored before, and get only the work they lack (a
    derivative missing or of an earlier rule, a pyramid not built, a preview missing): what a
    closing run queues for its outputs, so that work a batch could not queue is queued then.
    Without it every blob gets every kind that applies to it, done or not (new blobs).

    The work is split into messages (core/queueing.py ``enqueue_batches``): derivatives and
    previews ``MAKE_BATCH`` / ``PREVIEWS_PER_TASK`` blobs each, pyramids one each, so every
    worker takes a share of a large import. Work for every given blob keeps ``blob_ids``'
    order; work for some of them goes in id order. ``blob_ids`` may be a query of ids (a
    run's outputs: tens of thousands of ids would pass PostgreSQL's 65,535 bound parameters
    as a list)."""
    if not isinstance(blob_ids, QuerySet) and not blob_ids:
        return
    for work in BLOB_WORK:
        if work is PREVIEWS and not previews:
            continue
        enqueue_batches(work.task, _needing(work, blob_ids, lacking_only=lacking_only),
                        work.per_task)


def _needing(work: BlobWork, blob_ids: Sequence[int] | QuerySet, *,
             lacking_only: bool) -> list[int]:
    """Those of ``blob_ids`` that ``work`` is queued for (every one, without a query of its
    own, when it applies to every blob and done ones are not skipped), in id order.

    A list is looked up in chunks (core/bounded.py): an import's 70,000 new blobs in one
    ``IN`` pass the database's bound-parameter limit. A query of ids binds nothing and is
    one query."""
    if work.applies is None and not lacking_only:
        return list(blob_ids)
    blobs = ImageBlob.objects.all()
    if work.applies is not None:
        blobs = blobs.filter(work.applies())
    if lacking_only:
        blobs = blobs.exclude(work.done())
    if isinstance(blob_ids, QuerySet):
        return list(blobs.filter(id__in=blob_ids).order_by("pk").values_list("id", flat=True))
    # Sorted as a whole: each chunk's query orders its own rows only.
    return sorted({pk for part in in_chunks(blobs, "id", blob_ids)
                   for pk in part.values_list("id", flat=True)})


def large_blob_ids(blob_ids: list[int]) -> list[int]:
    """The subset of ``blob_ids`` that need a pyramid: callers enqueue only these."""
    return _needing(PYRAMIDS, blob_ids, lacking_only=False)
