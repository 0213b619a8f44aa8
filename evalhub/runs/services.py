"""Creating models, checkpoints and runs, with the cross-object checks the schema cannot do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evalhub.core.errors import EvalHubError, InvalidFields
from evalhub.core.fixed import fixed_fields_check
from evalhub.core.limits import MAX_INT64
from evalhub.core.text import counted
from evalhub.projects.models import Project
from evalhub.projects.references import check_same_project
from evalhub.prompts.models import PromptSet
from evalhub.runs.models import (
    IMPORTED_GENERATOR,
    MAX_SEED,
    MAX_SEEDS,
    Checkpoint,
    GenerationRun,
    GenModel,
    Image,
    MediaKind,
    RunSource,
)

# What a run's outputs were made from: fixed once it exists, since its images (and the
# campaigns and metrics over them) answer exactly these. Only its name may change.
RUN_FIXED_FIELDS = ("checkpoint", "prompt_set", "source", "seeds", "parameters")
# What a checkpoint's outputs were made with: fixed once a run of it has outputs, which would
# otherwise be attributed to another model or settings than made them. Its name and training
# step may change (labels, e.g. a step entered wrong).
CHECKPOINT_FIXED_FIELDS = ("model", "generator", "parameters", "weights_uri")


def run_change_check(*, run: GenerationRun, changes: Mapping[str, Any]) -> None:
    """Refuse a change to what ``run`` was made from (RUN_FIXED_FIELDS), each field named, and
    a new name another run of the project has (:func:`run_name_check`)."""
    fixed_fields_check(
        current={field: getattr(run, field) for field in RUN_FIXED_FIELDS}, changes=changes,
        message="A run's {field} is fixed once the run exists (its outputs answer it): "
                "create a new run instead.")
    if "name" in changes:
        try:
            run_name_check(project_id=run.project_id, name=changes["name"], run=run)
        except EvalHubError as exc:
            raise InvalidFields({"name": [str(exc)]}) from exc


def run_name_check(*, project_id: int, name: str, run: GenerationRun | None = None) -> None:
    """Refuse ``name`` when another run of the project than ``run`` has it (a name picks a run
    in commands, campaigns and exports)."""
    others = GenerationRun.objects.filter(project_id=project_id, name=name)
    if run is not None:
        others = others.exclude(pk=run.pk)
    if others.exists():
        raise EvalHubError(f"The project already has a run named {name!r}.")


def checkpoint_has_outputs(checkpoint: Checkpoint) -> bool:
    """Whether a run of ``checkpoint`` has an output: from then on its
    CHECKPOINT_FIXED_FIELDS are fixed."""
    return Image.objects.filter(run__checkpoint=checkpoint).exists()


def checkpoint_change_check(*, checkpoint: Checkpoint, changes: Mapping[str, Any]) -> None:
    """Refuse a change to what ``checkpoint``'s outputs were made with (CHECKPOINT_FIXED_FIELDS)
    once one of its runs has an output, each field named; before that, anything may change."""
    if not any(field in changes for field in CHECKPOINT_FIXED_FIELDS) or \
            not checkpoint_has_outputs(checkpoint):
        return
    fixed_fields_check(
        current={field: getattr(checkpoint, field) for field in CHECKPOINT_FIXED_FIELDS},
        changes=changes,
        message="A checkpoint's {field} is fixed once one of its runs has outputs (they "
                "answer it): register a new checkpoint instead.")


def seeds_check(seeds: Any) -> list[int]:
    """A run's seeds, refused unless a list of at most MAX_SEEDS distinct whole numbers in
    0..MAX_SEED. Checked in run_create, which the API, the workspace and the generate command
    all pass (a seed past 64 bits used to be stored, then failed every batch in the worker)."""
    if not isinstance(seeds, list | tuple) or any(
            isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise EvalHubError("Seeds are a list of whole numbers, e.g. [0, 1, 2].")
    if len(seeds) > MAX_SEEDS:
        raise EvalHubError(f"A run has at most {MAX_SEEDS} seeds; {len(seeds)} given.")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        shown = ", ".join(str(s) for s in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise EvalHubError(f"Seeds are 0 to {MAX_SEED}; out of range: {shown}.")
    if len(set(seeds)) != len(seeds):
        raise EvalHubError("Seeds must be distinct.")
    return list(seeds)


def run_items_check(*, prompt_set: PromptSet, seeds: Sequence[int]) -> int:
    """The (prompt, seed) items a generated run of ``prompt_set`` and ``seeds`` plans, refused
    past ``EVALHUB_MAX_RUN_ITEMS`` with the numbers. Checked when a run is created
    (:func:`run_create`: the API, the workspace form, the ``generate`` command) and when one
    is launched (``generation.services.generation_launch``: a run stored before the limit, or
    under a higher one), before any item is planned; a run's prompt set and seeds never
    change once it exists (:func:`run_change_check`)."""
    prompts = prompt_set.prompts.count()
    items = prompts * len(seeds)
    limit = settings.EVALHUB_MAX_RUN_ITEMS
    if items > limit:
        raise EvalHubError(
            f"{counted(prompts, 'prompt')} x {counted(len(seeds), 'seed')} = "
            f"{counted(items, 'item')}; at most {limit:,} per run "
            "(EVALHUB_MAX_RUN_ITEMS). Use fewer seeds or prompts, or split the work into "
            "several runs.")
    return items


def training_step_check(training_step: int | None) -> None:
    """A checkpoint's training step, when known, counts the optimizer steps before it was
    saved: 0 or more (the dashboards plot checkpoints along it)."""
    if training_step is not None and training_step < 0:
        raise EvalHubError(f"Training step {training_step} is negative; it counts the "
                           "optimizer steps before the checkpoint was saved: 0 or more.")
    if training_step is not None and training_step > MAX_INT64:
        raise EvalHubError(f"Training step {training_step} is over {MAX_INT64}.")


def checkpoint_register(
    *,
    project: Project,
    model_name: str,
    checkpoint_name: str,
    generator: str = IMPORTED_GENERATOR,
    training_step: int | None = None,
    weights_uri: str = "",
    parameters: dict[str, Any] | None = None,
    model_description: str = "",
) -> tuple[Checkpoint, bool]:
    """A new checkpoint of the project's model ``model_name``, the model created if new (with
    ``model_description``). Returns the checkpoint and whether the model was created.

    The checkpoint must be one a generation could use (``checkpoint_check``: an installed
    generator, parameters its schema accepts, weights when it loads them); nothing is created
    otherwise.
    """
    from evalhub.generation.services import checkpoint_check  # generation uses runs

    model_name, checkpoint_name = model_name.strip(), checkpoint_name.strip()
    if not model_name or not checkpoint_name:
        raise EvalHubError("A model and a checkpoint each need a name.")
    training_step_check(training_step)
    checkpoint_check(generator=generator, parameters=parameters or {}, weights_uri=weights_uri)
    with transaction.atomic():
        model, created = GenModel.objects.get_or_create(
            project=project, name=model_name, defaults={"description": model_description})
        if Checkpoint.objects.filter(model=model, name=checkpoint_name).exists():
            raise EvalHubError(f"Model {model_name!r} already has a checkpoint named "
                               f"{checkpoint_name!r}.")
        checkpoint = Checkpoint.objects.create(
            model=model, name=checkpoint_name, generator=generator, training_step=training_step,
            weights_uri=weights_uri, parameters=parameters or {})
    return checkpoint, created


def run_create(
    *,
    checkpoint: Checkpoint,
    prompt_set: PromptSet,
    name: str,
    source: str = RunSource.IMPORTED,
    seeds: Sequence[int] = (),
    parameters: dict[str, Any] | None = None,
    created_by: AbstractBaseUser | None = None,
) -> GenerationRun:
    """Register a run. Checkpoint and prompt set must belong to the same project."""
    project_id = checkpoint.model.project_id
    check_same_project(project_id, prompt_set=prompt_set)
    if source not in RunSource.values:
        raise EvalHubError(f"Unknown run source {source!r}.")
    seeds = seeds_check(seeds)
    if source == RunSource.GENERATED:
        if not seeds:
            raise EvalHubError("A generated run needs at least one seed.")
        run_items_check(prompt_set=prompt_set, seeds=seeds)
        # Refused now rather than at launch, so a run that could never draw is not stored.
        from evalhub.generation.services import generation_parameters  # generation uses runs

        generation_parameters(checkpoint=checkpoint, parameters=parameters or {})
    run_name_check(project_id=project_id, name=name)
    return GenerationRun.objects.create(
        project_id=project_id,
        checkpoint=checkpoint,
        prompt_set=prompt_set,
        name=name,
        source=source,
        seeds=seeds,
        parameters=parameters or {},
        created_by=created_by,
        media_kind=_generator_media_kind(checkpoint) if source == RunSource.GENERATED
        else MediaKind.IMAGE,
    )


def _generator_media_kind(checkpoint: Checkpoint) -> str:
    """``video`` for a checkpoint whose generator makes videos (``Generator.media_kind``), so a
    generated run is known to be a video run before its first output (``run_create`` has
    refused an unknown generator already)."""
    from generators import get_generator_class

    cls = get_generator_class(checkpoint.generator, settings.EVALHUB_GENERATORS)
    return MediaKind.VIDEO if cls.media_kind == MediaKind.VIDEO else MediaKind.IMAGE
