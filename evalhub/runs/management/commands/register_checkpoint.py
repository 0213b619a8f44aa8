"""manage.py register_checkpoint --project P --model M --checkpoint C [options]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from evalhub.core.cli import (
    get_project,
    model_text,
    parse_key_values,
    reports_domain_errors,
    text_argument,
)
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.runs.models import IMPORTED_GENERATOR, Checkpoint, GenModel
from evalhub.runs.services import checkpoint_register


class Command(BaseCommand):
    help = ("Register a checkpoint of a model (the model is created if new): the thing runs "
            "are generated from or imported for, and leaderboards compare.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--model", required=True, type=model_text(GenModel, "name"),
                            help="model name (created if the project has none of that name)")
        parser.add_argument("--checkpoint", required=True,
                            type=model_text(Checkpoint, "name"), help="checkpoint name")
        parser.add_argument("--training-step", type=int,
                            help="optimizer steps at which it was saved (the dashboards' x "
                                 "axis)")
        parser.add_argument("--generator", default=IMPORTED_GENERATOR,
                            type=model_text(Checkpoint, "generator"),
                            help="the plugin that draws its images or videos (a name that "
                                 "is not installed is refused with the list of those that "
                                 f"are), or {IMPORTED_GENERATOR!r} (default) for outputs "
                                 "imported from disk")
        parser.add_argument("--weights-uri", default="",
                            type=model_text(Checkpoint, "weights_uri"),
                            help="local path or hub id of its weights (generators that load "
                                 "weights)")
        parser.add_argument("--param", action="append", default=[],
                            help="generator parameter KEY=VALUE (JSON values), the "
                                 "checkpoint's default for its runs; repeatable")
        parser.add_argument("--model-description", default="",
                            type=text_argument(MAX_TEXT_CHARS),
                            help="description of a new model")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        checkpoint, created = checkpoint_register(
            project=project, model_name=options["model"], checkpoint_name=options["checkpoint"],
            generator=options["generator"], training_step=options["training_step"],
            weights_uri=options["weights_uri"],
            parameters=parse_key_values(options["param"], flag="--param"),
            model_description=options["model_description"])
        step = ("" if checkpoint.training_step is None
                else f", step {checkpoint.training_step}")
        self.stdout.write(f"Model {checkpoint.model.name!r}" + (" (new)" if created else "")
                          + f": checkpoint {checkpoint.name!r} (id {checkpoint.pk}, generator "
                          f"{checkpoint.generator}{step}).")

