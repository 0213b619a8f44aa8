from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from evalhub.blobs.sources import open_source
from evalhub.core.cli import get_project, model_text, reports_domain_errors
from evalhub.runs.importing.answers import reference_import_lines
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import ReferenceSet


class Command(BaseCommand):
    help = ("Add the images, or the videos (for FVD), of a folder or zip to a reference set "
            "(created if new), atomically; a set holds one kind.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path, help="folder or .zip")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name", required=True, help="reference set name",
                            type=model_text(ReferenceSet, "name"))
        parser.add_argument("--description", default="", help="where the real images come from",
                            type=model_text(ReferenceSet, "description"))

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        limit = settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES
        # One transaction: a refused import leaves no new, empty reference set behind.
        with transaction.atomic(), open_source(options["source"],
                                               max_total_bytes=limit) as source:
            reference_set, _ = ReferenceSet.objects.get_or_create(
                project=project, name=options["name"],
                defaults={"description": options["description"]},
            )
            report = reference_set_import(reference_set=reference_set, source=source)
        first, *skipped = reference_import_lines(reference_set, report)
        self.stdout.write(self.style.SUCCESS(first))
        for line in skipped:
            self.stdout.write(line)
