"""The comparison tasks of a campaign: same prompt, two runs, every pair of runs.

A pair whose two outputs are the same file is not served (counted in the build report's
``skipped_near_identical`` and ``skipped_identical``), nor, with ``min_lpips_distance``, one
closer than that. The report says whether that filter ran (``lpips_filter``), with which
backbone (``lpips_backbone``) and whether its distances came from random weights
(``lpips_uncalibrated``), or why it did not run (``lpips_not_applied``: "weights missing").
A build that leaves the campaign no task to ask (no pair at all, or every one skipped) fails
it with the reason (``build_report["error"]``) instead of opening it empty. A build that opens
it names the runs that no task shows (``runs_without_tasks``, worded in ``warnings``:
building/report.py), which would otherwise wait on the leaderboard for votes that never come.

Built by a worker (``evalhub.campaigns.build_tasks``) once every run of the campaign has its
images; idempotent, so a redelivered build creates nothing twice.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from evalhub.campaigns.building.report import nothing_to_ask, run_without_tasks
from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    TaskImage,
    TaskKind,
)
from evalhub.core.queueing import enqueue_on_commit
from evalhub.runs.models import GenerationRun, Image, RunSource, RunStatus

BUILD_TASK = "evalhub.campaigns.build_tasks"
#: Why a campaign's LPIPS threshold filtered nothing (``build_report["lpips_not_applied"]``).
WEIGHTS_MISSING = "weights missing"


@dataclass(frozen=True)
class PairDistances:
    """LPIPS distances of a build's pairs (unitless, 0 = identical), in the pairs' order, and
    the backbone that computed them; ``calibrated`` is False for random weights."""

    values: list[float]
    backbone_id: str
    calibrated: bool


# (image_a, image_b) pairs -> their distances; None when LPIPS cannot be computed.
PairDistance = Callable[[Sequence[tuple[Image, Image]]], PairDistances | None]


def images_on_prompts(runs: Sequence[GenerationRun], category: str) -> QuerySet[Image]:
    """The images of ``runs`` that a campaign asks about: on its prompts (those of its prompt
    ``category``; every prompt when empty). What pairs and best-of-K sets are built from."""
    images = Image.objects.filter(run__in=runs)
    return images.filter(prompt__category=category) if category else images


def _paired_images(runs: Sequence[GenerationRun], category: str) -> list[tuple[Image, Image]]:
    """Same prompt, two runs; the same seed when both have it, else seeds paired in order."""
    images = images_on_prompts(runs, category).select_related("prompt").order_by("seed")
    by_run_prompt: dict[tuple[int, int], list[Image]] = defaultdict(list)
    for image in images:
        by_run_prompt[(image.run_id, image.prompt_id)].append(image)
    prompt_ids = sorted({prompt for _, prompt in by_run_prompt})
    pairs = []
    for run_a, run_b in combinations(sorted(runs, key=lambda r: r.pk), 2):
        for prompt_id in prompt_ids:
            left = by_run_prompt.get((run_a.pk, prompt_id), [])
            right = by_run_prompt.get((run_b.pk, prompt_id), [])
            right_by_seed = {img.seed: img for img in right}
            common = [img for img in left if img.seed in right_by_seed]
            if common:
                pairs += [(img, right_by_seed[img.seed]) for img in common]
            else:
                pairs += list(zip(left, right, strict=False))
    return pairs


def unfinished_runs(runs: Sequence[GenerationRun]) -> list[GenerationRun]:
    """The runs a campaign's build waits for: generated ones not finished yet."""
    return [run for run in runs if run.source == RunSource.GENERATED
            and run.status not in (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED)]


def campaign_build_tasks(*, campaign: Campaign, pair_distance: PairDistance | None = None) -> int:
    """Create the campaign's comparison tasks (idempotent) and open it for rating.

    A campaign over runs that are still generating waits: it stays ``building`` and is built
    again when its last run finishes (see :func:`campaigns_build_waiting_for`).
    """
    runs = list(campaign.runs.all())
    waiting = unfinished_runs(runs)
    if waiting:
        campaign.build_report = {"waiting_for_runs": [run.pk for run in waiting]}
        campaign.save(update_fields=["build_report"])
        return 0
    if campaign.task_kind == TaskKind.BEST_OF_K:
        return _build_kwise(campaign, runs)
    pairs = _paired_images(runs, campaign.prompt_category)
    distances: list[float | None] = [None] * len(pairs)
    skipped = 0
    computed: PairDistances | None = None
    if campaign.min_lpips_distance is not None:
        if pair_distance is None:
            from evalhub.campaigns.building.similarity import lpips_pair_distances as pair_distance
        computed = pair_distance(pairs)
        if computed is not None:
            distances = list(computed.values)
    rng = random.Random(campaign.pk)
    existing = set(campaign.tasks.values_list("image_a_id", "image_b_id"))
    new_tasks = []
    identical = 0
    for (image_a, image_b), distance in zip(pairs, distances, strict=True):
        # The very same file on both sides (content-addressed): a vote could only say tie, so
        # no annotator is asked, with or without the LPIPS filter.
        if image_a.file_key == image_b.file_key:
            identical += 1
            skipped += 1
            continue
        if distance is not None and distance < campaign.min_lpips_distance:
            skipped += 1
            continue
        if (image_a.pk, image_b.pk) in existing:
            continue
        new_tasks.append(ComparisonTask(
            campaign=campaign, prompt_id=image_a.prompt_id, image_a=image_a, image_b=image_b,
            run_a_id=image_a.run_id, run_b_id=image_b.run_id,
            judgments_needed=campaign.judgments_per_pair, shuffle_key=rng.random(),
            lpips_distance=distance,
        ))
    with transaction.atomic():
        ComparisonTask.objects.bulk_create(new_tasks, batch_size=1000)
        campaign.build_report = {
            "pairs": len(pairs), "tasks_created": len(new_tasks), "tasks": _asked(campaign),
            "skipped_near_identical": skipped, "skipped_identical": identical,
            **_filter_report(campaign, computed),
        }
        _built(campaign, found=bool(pairs))
    return len(new_tasks)


def _filter_report(campaign: Campaign, computed: PairDistances | None) -> dict[str, Any]:
    """The build report's words on the LPIPS filter: ``lpips_filter`` True only when it ran
    (a distance for every pair), then its backbone and whether its distances are uncalibrated
    (random weights); a threshold that filtered nothing for want of weights says so."""
    if computed is not None:
        return {"lpips_filter": True, "lpips_backbone": computed.backbone_id,
                "lpips_uncalibrated": not computed.calibrated}
    if campaign.min_lpips_distance is not None:
        return {"lpips_filter": False, "lpips_not_applied": WEIGHTS_MISSING}
    return {"lpips_filter": False}


def _asked(campaign: Campaign) -> int:
    """The campaign's tasks to ask annotators, gold pairs left out: the build report's
    ``tasks`` (its ``tasks_created`` counts only what the last build added, 0 when a run that
    finished later rebuilt a campaign already built)."""
    return campaign.tasks.filter(is_gold=False).count()


def _built(campaign: Campaign, *, found: bool) -> None:
    """Open the built campaign (or keep it a draft), or fail it when no task could be formed:
    no pair or K-set at all (``found`` False), or every one skipped as identical or
    near-identical, so that the campaign holds no task to ask (gold pairs ask nothing new)."""
    if not found:
        campaign.status = CampaignStatus.FAILED
        # Name the runs that answered none of the campaign's prompts: the usual cause (a prompt
        # category they have no image in), and one a scientist cannot guess from the error.
        runs = list(campaign.runs.order_by("name"))
        with_images = _with_images(campaign, runs)
        empty = [run.name for run in runs if run.pk not in with_images]
        # The category named when one was set: it is what left the prompts out.
        category = (f" of the category {campaign.prompt_category!r}"
                    if campaign.prompt_category else "")
        campaign.build_report["error"] = (
            f"The runs have no images on common prompts{category}." + (
                f" No image on the campaign's prompts: {', '.join(map(repr, empty))}."
                if empty else ""))
    elif not campaign.build_report["tasks"]:  # counted by the build that calls this
        campaign.status = CampaignStatus.FAILED
        campaign.build_report["error"] = nothing_to_ask(campaign.build_report)
    else:
        campaign.build_report.update(_runs_without_tasks(campaign))
        if campaign.status == CampaignStatus.BUILDING:
            campaign.status = (CampaignStatus.ACTIVE if campaign.open_when_built
                               else CampaignStatus.DRAFT)
    campaign.save(update_fields=["build_report", "status"])


def _runs_without_tasks(campaign: Campaign) -> dict[str, list]:
    """The build report's ``runs_without_tasks`` (ids) and their ``warnings``: the campaign's
    runs that no task to ask shows (a best-of-K task's members included), so no vote will
    ever rate them; the campaign is opened all the same, for the other runs."""
    tasks = ComparisonTask.objects.filter(campaign=campaign, is_gold=False).order_by()
    # Distinct run ids only: a campaign's tasks run to hundreds of thousands, its runs to tens.
    shown = (set(tasks.values_list("run_a_id", flat=True).distinct())
             | set(tasks.values_list("run_b_id", flat=True).distinct())
             | set(TaskImage.objects.filter(task__in=tasks).order_by()
                   .values_list("run_id", flat=True).distinct()))
    missing = [run for run in campaign.runs.order_by("pk") if run.pk not in shown]
    if not missing:
        return {"runs_without_tasks": [], "warnings": []}
    with_images = _with_images(campaign, missing)
    unit = "set" if campaign.task_kind == TaskKind.BEST_OF_K else "pair"
    return {"runs_without_tasks": [run.pk for run in missing],
            "warnings": [run_without_tasks(run.name, category=campaign.prompt_category,
                                           has_images=run.pk in with_images, unit=unit)
                         for run in missing]}


def _build_kwise(campaign: Campaign, runs: Sequence[GenerationRun]) -> int:
    """Best-of-K tasks (building/kwise.py); no LPIPS filter (it compares pairs)."""
    from evalhub.campaigns.building.kwise import build_kwise_tasks

    with transaction.atomic():
        built = build_kwise_tasks(campaign=campaign, runs=runs)
        campaign.build_report = {"k_sets": built.sets, "tasks_created": built.created,
                                 "tasks": _asked(campaign),
                                 "skipped_identical": built.identical, "k": campaign.k,
                                 "lpips_filter": False}
        _built(campaign, found=bool(built.sets))
    return built.created


def campaigns_build_waiting_for(*, run: GenerationRun) -> int:
    """Queue the build of every campaign that waits for ``run`` (called when it finishes)."""
    waiting = list(Campaign.objects.filter(runs=run, status=CampaignStatus.BUILDING)
                   .values_list("pk", flat=True))
    for campaign_id in waiting:
        enqueue_on_commit(BUILD_TASK, campaign_id)
    return len(waiting)


def _with_images(campaign: Campaign, runs: Sequence[GenerationRun]) -> set[int]:
    """The ids of those ``runs`` that have an image on the campaign's prompts (its category)."""
    return set(images_on_prompts(runs, campaign.prompt_category).order_by()
               .values_list("run_id", flat=True).distinct())
