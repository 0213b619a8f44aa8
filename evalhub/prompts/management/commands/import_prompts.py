import argparse
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.blobs.sources import open_source
from evalhub.core.cli import get_project, model_text, reports_domain_errors
from evalhub.prompts.models import PromptSet
from evalhub.prompts.parsers import FORMATS, detect_format
from evalhub.prompts.services import prompt_set_import


def _name_from_file(path: Path) -> str:
    """The file's stem as the prompt set's name, under the rule ``--name`` follows (the same
    argument type): a file name written on macOS is NFD and becomes the NFC name typed, while
    one holding a control character or a byte that is not UTF-8 (which the database cannot
    encode: a traceback) is refused in words, with what to do instead."""
    try:
        return model_text(PromptSet, "name")(path.stem)
    except argparse.ArgumentTypeError as exc:
        raise CommandError(f"The file name {path.name!r} cannot be a prompt-set name: "
                           f"{str(exc).rstrip('.')}; pass --name.") from exc


class Command(BaseCommand):
    help = "Create a prompt set from a CSV, JSONL or text file (all prompts, or none)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path,
                            help="prompt file: CSV (a text column), JSON Lines or plain text")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name", help="prompt set name (default: the file name)",
                            type=model_text(PromptSet, "name"))
        parser.add_argument("--format", choices=FORMATS,
                            help="the file's format (default: from its extension)")
        parser.add_argument("--description", default="", help="what the prompt set is for",
                            type=model_text(PromptSet, "description"))
        parser.add_argument("--images", type=Path, help="folder or zip with source images")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        project = get_project(options["project"])
        fmt = options["format"] or detect_format(path.name)
        kwargs = dict(
            project=project,
            name=options["name"] or _name_from_file(path),
            description=options["description"],
            data=path.read_bytes(),
            fmt=fmt,
        )
        if options["images"]:
            limit = settings.EVALHUB_MAX_ZIP_UNCOMPRESSED_BYTES
            with open_source(options["images"], max_total_bytes=limit) as images:
                prompt_set = prompt_set_import(images=images, **kwargs)
        else:
            prompt_set = prompt_set_import(**kwargs)
        count = prompt_set.prompts.count()
        self.stdout.write(self.style.SUCCESS(
            f"Prompt set {prompt_set.name!r} (id {prompt_set.id}): {count} prompts."
        ))
