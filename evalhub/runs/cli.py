"""Command-line helpers shared by the commands that work on one run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.management.base import CommandError, CommandParser

from evalhub.core.cli import get_by_name, model_text
from evalhub.generation.plan import format_seeds
from evalhub.generation.services import generation_parameters
from evalhub.projects.models import Project
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import Checkpoint, GenerationRun, GenModel, RunSource
from evalhub.runs.services import run_create


def add_run_arguments(parser: CommandParser) -> None:
    parser.add_argument("--run", required=True, help="run name",
                        type=model_text(GenerationRun, "name"))
    # An existing run's options, when given, must be its own (run_options_check).
    own = "; an existing run's must be its own"
    parser.add_argument("--model", help=f"model name (to create the run{own})",
                        type=model_text(GenModel, "name"))
    parser.add_argument("--checkpoint", help=f"checkpoint name (to create the run{own})",
                        type=model_text(Checkpoint, "name"))
    parser.add_argument("--prompt-set", help=f"prompt set name (to create the run{own})",
                        type=model_text(PromptSet, "name"))

#: The command-line option that gives each run field ``run_from_options`` compares.
RUN_OPTIONS = {"model": "--model", "checkpoint": "--checkpoint", "prompt_set": "--prompt-set",
               "seeds": "--seeds", "parameters": "--param"}


def run_from_options(*, project: Project, options: dict[str, Any],
                     given: Mapping[str, Any] | None = None,
                     new_run: Mapping[str, Any] | None = None) -> GenerationRun:
    """The run named ``--run``, created from ``--model/--checkpoint/--prompt-set`` if new.

    ``given`` holds the run fields (``seeds``, ``parameters``) parsed from the options the
    person passed, ``new_run`` further ``run_create`` arguments for a new run only (its source,
    defaults for options left out). A run's outputs answer what it was made from, so for an
    existing run every option given must agree with it (:func:`run_options_check`): one that
    differs used to be ignored silently, the run resumed as it was.
    """
    given = given or {}
    run = (GenerationRun.objects.select_related("checkpoint__model", "prompt_set")
           .filter(project=project, name=options["run"]).first())
    if run is not None:
        run_options_check(run=run, options=options, given=given)
        return run
    if not (options["model"] and options["checkpoint"] and options["prompt_set"]):
        raise CommandError(f"No run {options['run']!r}; pass --model, --checkpoint and "
                           "--prompt-set to create it.")
    checkpoint = get_by_name(Checkpoint, what="checkpoint", model__project=project,
                             model__name=options["model"], name=options["checkpoint"])
    prompt_set = get_by_name(PromptSet, what="prompt set", project=project,
                             name=options["prompt_set"])
    return run_create(checkpoint=checkpoint, prompt_set=prompt_set, name=options["run"],
                      **{**(new_run or {}), **given})


def run_options_check(*, run: GenerationRun, options: Mapping[str, Any],
                      given: Mapping[str, Any]) -> None:
    """Refuse, in one line, the options given that differ from the existing ``run``: each
    named with what the run has (options left out are fine). The API refuses such changes
    too (``run_change_check``); a command that went on would answer another question than
    the one asked, with exit status 0."""
    names = {"model": run.checkpoint.model.name, "checkpoint": run.checkpoint.name,
             "prompt_set": run.prompt_set.name}
    differ = [f"{RUN_OPTIONS[field]} {options[field]!r} (the run has {names[field]!r})"
              for field in names if options.get(field) and options[field] != names[field]]
    if "seeds" in given and sorted(given["seeds"]) != sorted(run.seeds):
        differ.append(f"{RUN_OPTIONS['seeds']} {format_seeds(given['seeds'])} "
                      f"(the run has {format_seeds(run.seeds)})")
    if "parameters" in given and not _same_parameters(run, given["parameters"]):
        differ.append(f"{RUN_OPTIONS['parameters']} {_key_values(given['parameters'])} "
                      f"(the run has {_key_values(run.parameters) or 'no parameters'})")
    if differ:
        raise CommandError(
            f"Run {run.name!r} exists and was made otherwise: {'; '.join(differ)}. A run's "
            "model, checkpoint, prompt set, seeds and parameters are fixed once it exists: "
            "leave those options out to resume it, or name a new run with --run.")


def _same_parameters(run: GenerationRun, parameters: Mapping[str, Any]) -> bool:
    """Whether ``parameters`` draw as the run's own do: for a generated run, the settings its
    generator resolves (``--param quality=1.0`` is a run stored with none, when 1.0 is the
    default), else the stored dict as it is."""
    if parameters == run.parameters:
        return True
    if run.source != RunSource.GENERATED:
        return False
    return (generation_parameters(checkpoint=run.checkpoint, parameters=dict(parameters))
            == generation_parameters(checkpoint=run.checkpoint, parameters=run.parameters))


def _key_values(parameters: Mapping[str, Any]) -> str:
    """``{"steps": 30, "scheduler": "DDIM"}`` -> ``steps=30 scheduler=DDIM``, the way
    ``--param`` is written (``parse_key_values`` reads it back)."""
    return " ".join(f"{key}={value if isinstance(value, str) else json.dumps(value)}"
                    for key, value in parameters.items())
