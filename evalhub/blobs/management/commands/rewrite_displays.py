"""``manage.py rewrite_displays``: queue the writing of every display derivative that is missing
or was written by an earlier rule (blobs/display.py ``DISPLAY_RULE``).

A required step after an upgrade that raises the rule, before annotators come back
(docs/deployment.md, "Upgrading"): until a worker has rewritten them, the derivatives of images
too large to encode in a web request answer 503 and their campaigns are served as "preparing"
(campaigns/building/images.py). It only sends tasks (``evalhub.blobs.make_displays``, default
queue), ``--batch`` blob ids each (``MAKE_BATCH``, 500, by default: minutes per task, far below
the broker's visibility timeout); each task goes on past a blob it cannot write (the reason is
logged) and skips the derivatives that are current, so running it again, or on an
installation whose derivatives are all current, queues nothing or writes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evalhub.blobs.display import MAKE_BATCH, MAKE_TASK, display_current_q
from evalhub.blobs.models import ImageBlob
from evalhub.core.queueing import enqueue_pk_pages


def checked_batch(batch: int) -> int:
    """``--batch`` of the queueing commands (this one and ``backfill_whole_levels``): ids per
    task, at least 1 (0 queued nothing while claiming success; a negative one failed deep in
    the query)."""
    if batch < 1:
        raise CommandError(f"--batch must be at least 1 (got {batch}).")
    return batch


class Command(BaseCommand):
    help = ("Queue the writing of the display derivatives that are missing or of an earlier "
            "rule (one task per --batch images; idempotent).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=MAKE_BATCH,
                            help=f"images per task (default {MAKE_BATCH})")

    def handle(self, *args, batch: int, **options) -> None:
        batch = checked_batch(batch)
        queued = enqueue_pk_pages(MAKE_TASK, ImageBlob.objects.exclude(display_current_q())
                                  .order_by("pk").values_list("pk", flat=True), batch)
        self.stdout.write(f"queued {MAKE_TASK} for {queued.items} derivatives in "
                          f"{queued.tasks} tasks")
