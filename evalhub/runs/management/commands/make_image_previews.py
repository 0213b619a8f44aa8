"""``manage.py make_image_previews [--project SLUG]``: queue the preview task again for every
image (of one project, or of all) that shows no preview (runs/previews.py).

An image shows its preview once the task queued for it by its import or generation has run. A
task can be lost: during a deploy an old worker discards a task name it does not know, and a
broker can lose messages (docs/operations.md, "An image shows no preview"). Run it once the
workers run the new code (docs/deployment.md, "Upgrading"). It only sends tasks
(``evalhub.runs.make_previews``, default queue, 500 images each); the tasks skip the images
shown by then, so running it again is safe.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from evalhub.core.cli import get_project, reports_domain_errors
from evalhub.runs.previews import PREVIEWS_TASK, images_queue_missing_previews


class Command(BaseCommand):
    help = ("Queue the preview task of every image that shows no preview (a lost task); "
            "idempotent.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", metavar="SLUG",
                            help="project slug (default: every project)")

    @reports_domain_errors
    def handle(self, *args, project: str | None, **options) -> None:
        queued = images_queue_missing_previews(
            project=get_project(project) if project is not None else None)
        self.stdout.write(f"queued {PREVIEWS_TASK} for {queued.items} images without a "
                          f"preview in {queued.tasks} tasks")
