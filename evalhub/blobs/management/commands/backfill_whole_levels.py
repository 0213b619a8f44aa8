"""``manage.py backfill_whole_levels``: queue the writing of whole pyramid levels for every
pyramid built before they were stored (blobs/tiles.py, module doc "Whole levels").

Run once after upgrading, when the workers run the new code (docs/deployment.md, "Upgrading"):
it only sends tasks (``evalhub.blobs.write_whole_levels``, default queue), ``--batch`` blob ids
each, for every complete pyramid; the workers skip the levels already stored, so running it
again, or on an installation whose pyramids all have them, writes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from evalhub.blobs.management.commands.rewrite_displays import checked_batch
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import WHOLE_LEVELS_TASK, built_q, large_q
from evalhub.core.queueing import enqueue_pk_pages


class Command(BaseCommand):
    help = ("Queue the writing of the whole small levels of pyramids built before they were "
            "stored (one task per --batch pyramids; idempotent).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=200,
                            help="pyramids per task (default 200)")

    def handle(self, *args, batch: int, **options) -> None:
        batch = checked_batch(batch)
        queued = enqueue_pk_pages(WHOLE_LEVELS_TASK, ImageBlob.objects.filter(
            large_q(), built_q()).order_by("pk").values_list("pk", flat=True), batch)
        self.stdout.write(f"queued {WHOLE_LEVELS_TASK} for {queued.items} built pyramids "
                          f"in {queued.tasks} tasks")
