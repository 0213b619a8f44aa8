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
from evalhub.core.pagination import pk_pages
from evalhub.core.queueing import enqueue_on_commit


class Command(BaseCommand):
    help = ("Queue the writing of the whole small levels of pyramids built before they were "
            "stored (one task per --batch pyramids; idempotent).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=200,
                            help="pyramids per task (default 200)")

    def handle(self, *args, batch: int, **options) -> None:
        batch = checked_batch(batch)
        ids = (ImageBlob.objects.filter(large_q(), built_q())
               .order_by("pk").values_list("pk", flat=True))
        tasks = pyramids = 0
        for page in pk_pages(ids, batch):
            enqueue_on_commit(WHOLE_LEVELS_TASK, page)  # no transaction: sent at once
            tasks += 1
            pyramids += len(page)
        self.stdout.write(f"queued {WHOLE_LEVELS_TASK} for {pyramids} built pyramids "
                          f"in {tasks} tasks")
