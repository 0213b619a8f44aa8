"""Command-line helpers shared by the commands that work on one run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser

from evalhub.core.cli import get_by_name, model_text
from evalhub.projects.models import Project
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel
from evalhub.runs.services import run_create


def add_run_arguments(parser: CommandParser) -> None:
    parser.add_argument("--run", required=True, help="run name",
                        type=model_text(GenerationRun, "name"))
    parser.add_argument("--model", help="model name (to create the run)",
                        type=model_text(GenModel, "name"))
    parser.add_argument("--checkpoint", help="checkpoint name (to create the run)",
                        type=model_text(Checkpoint, "name"))
    parser.add_argument("--prompt-set", help="prompt set name (to create the run)",
                        type=model_text(PromptSet, "name"))


def run_from_options(*, project: Project, options: dict[str, Any],
                     create_kwargs: Callable[[], dict[str, Any]] = dict) -> GenerationRun:
    """The run named ``--run``, created from ``--model/--checkpoint/--prompt-set`` if new.

    ``create_kwargs`` is called only when the run is created, so options that matter only
    for a new run are parsed only then.
    """
    run = GenerationRun.objects.filter(project=project, name=options["run"]).first()
    if run is not None:
        return run
    if not (options["model"] and options["checkpoint"] and options["prompt_set"]):
        raise CommandError(f"No run {options['run']!r}; pass --model, --checkpoint and "
                           "--prompt-set to create it.")
    checkpoint = get_by_name(Checkpoint, what="checkpoint", model__project=project,
                             model__name=options["model"], name=options["checkpoint"])
    prompt_set = get_by_name(PromptSet, what="prompt set", project=project,
                             name=options["prompt_set"])
    return run_create(checkpoint=checkpoint, prompt_set=prompt_set, name=options["run"],
                      **create_kwargs())
