from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from evalhub.blobs.sources import open_source
from evalhub.core.cli import get_project, reports_domain_errors
from evalhub.runs.cli import add_run_arguments, run_from_options
from evalhub.runs.importing.answers import run_import_lines
from evalhub.runs.importing.services import run_images_import


class Command(BaseCommand):
    help = (
        "Import a run's images or videos from a folder or zip plus a manifest (CSV/JSONL: file, "
        "prompt, seed). Creates the run if --model, --checkpoint and --prompt-set are given; "
        "into an existing run, those given must be the run's own. All files, or none; files "
        "the manifest does not list are skipped and named."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path, help="folder or .zip")
        parser.add_argument("--project", required=True, help="project slug")
        add_run_arguments(parser)
        parser.add_argument("--manifest", type=Path,
                            help="manifest file (default: manifest.csv/jsonl inside the source)")
        parser.add_argument("--skip-existing", action="store_true",
                            help="skip (prompt, seed) items the run already has")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        manifest_path: Path | None = options["manifest"]
        limit = settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES
        # One transaction: a rejected import leaves no new run behind.
        with transaction.atomic(), open_source(options["source"],
                                               max_total_bytes=limit) as source:
            run = run_from_options(project=project, options=options)
            report = run_images_import(
                run=run,
                source=source,
                manifest=manifest_path.read_bytes() if manifest_path else None,
                manifest_name=manifest_path.name if manifest_path else "manifest.csv",
                skip_existing=options["skip_existing"],
            )
        first, *skipped = run_import_lines(run, report)
        self.stdout.write(self.style.SUCCESS(first))
        for line in skipped:
            self.stdout.write(line)
