from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from evalhub.blobs.sources import open_source
from evalhub.core.cli import get_project, reports_domain_errors
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import ReferenceSet


class Command(BaseCommand):
    help = "Add the images of a folder or zip to a reference set (created if new), atomically."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path, help="folder or .zip")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name", required=True, help="reference set name")
        parser.add_argument("--description", default="")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        reference_set, _ = ReferenceSet.objects.get_or_create(
            project=project, name=options["name"],
            defaults={"description": options["description"]},
        )
        limit = settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES
        with open_source(options["source"], max_total_bytes=limit) as source:
            report = reference_set_import(reference_set=reference_set, source=source)
        self.stdout.write(self.style.SUCCESS(
            f"Reference set {reference_set.name!r}: {report.images_created} images added "
            f"({report.blobs_created} new files)."
        ))
