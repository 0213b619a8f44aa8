from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.blobs.sources import open_source
from evalhub.core.cli import get_by_name, get_project, reports_domain_errors
from evalhub.prompts.models import PromptSet
from evalhub.runs.importing.services import run_images_import
from evalhub.runs.models import Checkpoint, GenerationRun
from evalhub.runs.services import run_create


class Command(BaseCommand):
    help = (
        "Import a run's images from a folder or zip plus a manifest (CSV/JSONL: file, prompt, "
        "seed). Creates the run if --checkpoint and --prompt-set are given. All images, or none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path, help="folder or .zip")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--run", required=True, help="run name")
        parser.add_argument("--manifest", type=Path,
                            help="manifest file (default: manifest.csv/jsonl inside the source)")
        parser.add_argument("--model", help="model name (to create the run)")
        parser.add_argument("--checkpoint", help="checkpoint name (to create the run)")
        parser.add_argument("--prompt-set", help="prompt set name (to create the run)")
        parser.add_argument("--skip-existing", action="store_true",
                            help="skip (prompt, seed) items the run already has")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        run = GenerationRun.objects.filter(project=project, name=options["run"]).first()
        if run is None:
            if not (options["model"] and options["checkpoint"] and options["prompt_set"]):
                raise CommandError(
                    f"No run {options['run']!r}; pass --model, --checkpoint and --prompt-set "
                    "to create it."
                )
            checkpoint = get_by_name(
                Checkpoint, what="checkpoint", model__project=project,
                model__name=options["model"], name=options["checkpoint"],
            )
            prompt_set = get_by_name(
                PromptSet, what="prompt set", project=project, name=options["prompt_set"]
            )
            run = run_create(checkpoint=checkpoint, prompt_set=prompt_set, name=options["run"])
        manifest_path: Path | None = options["manifest"]
        limit = settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES
        with open_source(options["source"], max_total_bytes=limit) as source:
            report = run_images_import(
                run=run,
                source=source,
                manifest=manifest_path.read_bytes() if manifest_path else None,
                manifest_name=manifest_path.name if manifest_path else "manifest.csv",
                skip_existing=options["skip_existing"],
            )
        self.stdout.write(self.style.SUCCESS(
            f"Run {run.name!r}: {report.images_created} images imported, "
            f"{report.blobs_created} new files stored, "
            f"{report.duplicates_of_existing_blobs} already stored."
        ))
