"""Creating campaigns and the comparison tasks they serve."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from itertools import combinations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evalhub.campaigns.models import (
    Campaign,
    CampaignStatus,
    ComparisonTask,
    Criterion,
    Outcome,
    PairPolicy,
)
from evalhub.core.errors import EvalHubError
from evalhub.core.queueing import enqueue_on_commit
from evalhub.projects.models import Project
from evalhub.runs.models import GenerationRun, Image, RunSource, RunStatus

BUILD_TASK = "evalhub.campaigns.build_tasks"
# (image_a, image_b) -> LPIPS distance; None when LPIPS cannot be computed.
PairDistance = Callable[[Sequence[tuple[Image, Image]]], list[float] | None]


def _validate(*, runs: Sequence[GenerationRun], criteria: Sequence[str], gold_rate: float,
              judgments_per_pair: int, project: Project) -> list[str]:
    if len(runs) < 2:
        raise EvalHubError("A campaign compares at least two runs.")
    if any(run.project_id != project.id for run in runs):
        raise EvalHubError("Every run of a campaign must belong to the campaign's project.")
    if len({run.prompt_set_id for run in runs}) != 1:
        raise EvalHubError("The runs of a campaign must share one prompt set "
                           "(pairs are formed on the same prompt).")
    criteria = list(dict.fromkeys(criteria or [Criterion.OVERALL]))
    unknown = [c for c in criteria if c not in Criterion.values]
    if unknown:
        raise EvalHubError(f"Unknown criteria {unknown}; expected some of {Criterion.values}.")
    if Criterion.OVERALL not in criteria:
        criteria.insert(0, Criterion.OVERALL)
    if not 0 <= gold_rate <= 0.5:
        raise EvalHubError("gold_rate must be between 0 and 0.5.")
    if not 1 <= judgments_per_pair <= 50:
        raise EvalHubError("judgments_per_pair must be between 1 and 50.")
    return criteria


@transaction.atomic
def campaign_create(
    *,
    project: Project,
    name: str,
    runs: Sequence[GenerationRun],
    criteria: Sequence[str] = (Criterion.OVERALL,),
    instructions: str = "",
    prompt_category: str = "",
    judgments_per_pair: int = 3,
    gold_rate: float = 0.0,
    pair_policy: str = PairPolicy.BALANCED,
    min_lpips_distance: float | None = None,
    lease_seconds: int = 180,
    created_by: AbstractBaseUser | None = None,
    build_now: bool = False,
) -> Campaign:
    """Create a campaign; its tasks are built by a worker (or now, with ``build_now``)."""
    criteria = _validate(runs=runs, criteria=criteria, gold_rate=gold_rate,
                         judgments_per_pair=judgments_per_pair, project=project)
    if pair_policy not in PairPolicy.values:
        raise EvalHubError(f"Unknown pair policy {pair_policy!r}.")
    if Campaign.objects.filter(project=project, name=name).exists():
        raise EvalHubError(f"The project already has a campaign named {name!r}.")
    campaign = Campaign.objects.create(
        project=project, name=name, instructions=instructions, prompt_category=prompt_category,
        criteria=criteria, judgments_per_pair=judgments_per_pair, gold_rate=gold_rate,
        pair_policy=pair_policy, min_lpips_distance=min_lpips_distance,
        lease_seconds=lease_seconds, created_by=created_by,
    )
    campaign.runs.set(runs)
    if build_now:
        campaign_build_tasks(campaign=campaign)
    else:
        enqueue_on_commit(BUILD_TASK, campaign.pk)
    return campaign


def _paired_images(runs: Sequence[GenerationRun], category: str) -> list[tuple[Image, Image]]:
    """Same prompt, two runs; the same seed when both have it, else seeds paired in order."""
    images = Image.objects.filter(run__in=runs).select_related("prompt").order_by("seed")
    if category:
        images = images.filter(prompt__category=category)
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


def _unfinished(runs: Sequence[GenerationRun]) -> list[GenerationRun]:
    return [run for run in runs if run.source == RunSource.GENERATED
            and run.status not in (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED)]


def campaign_build_tasks(*, campaign: Campaign, pair_distance: PairDistance | None = None) -> int:
    """Create the campaign's comparison tasks (idempotent) and open it for rating.

    A campaign over runs that are still generating waits: it stays ``building`` and is built
    again when its last run finishes (see :func:`campaigns_build_waiting_for`).
    """
    runs = list(campaign.runs.all())
    waiting = _unfinished(runs)
    if waiting:
        campaign.build_report = {"waiting_for_runs": [run.pk for run in waiting]}
        campaign.save(update_fields=["build_report"])
        return 0
    pairs = _paired_images(runs, campaign.prompt_category)
    distances: list[float | None] = [None] * len(pairs)
    skipped = 0
    if campaign.min_lpips_distance is not None:
        if pair_distance is None:
            from evalhub.campaigns.similarity import lpips_pair_distances as pair_distance
        computed = pair_distance(pairs)
        if computed is not None:
            distances = list(computed)
    rng = random.Random(campaign.pk)
    existing = set(campaign.tasks.values_list("image_a_id", "image_b_id"))
    new_tasks = []
    for (image_a, image_b), distance in zip(pairs, distances, strict=True):
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
            "pairs": len(pairs), "tasks_created": len(new_tasks),
            "skipped_near_identical": skipped,
            "lpips_filter": campaign.min_lpips_distance is not None,
        }
        if not pairs:
            campaign.status = CampaignStatus.FAILED
            campaign.build_report["error"] = "The runs have no images on common prompts."
        elif campaign.status == CampaignStatus.BUILDING:
            campaign.status = CampaignStatus.ACTIVE
        campaign.save(update_fields=["build_report", "status"])
    return len(new_tasks)


def campaigns_build_waiting_for(*, run: GenerationRun) -> int:
    """Queue the build of every campaign that waits for ``run`` (called when it finishes)."""
    waiting = list(Campaign.objects.filter(runs=run, status=CampaignStatus.BUILDING)
                   .values_list("pk", flat=True))
    for campaign_id in waiting:
        enqueue_on_commit(BUILD_TASK, campaign_id)
    return len(waiting)


def gold_task_add(*, campaign: Campaign, image_a: Image, image_b: Image, answer: str
                  ) -> ComparisonTask:
    """Add a gold pair with a known answer ("a" means ``image_a`` is better)."""
    if answer not in (Outcome.A, Outcome.B, Outcome.TIE):
        raise EvalHubError("A gold answer is 'a', 'b' or 'tie'.")
    if image_a.prompt_id != image_b.prompt_id:
        raise EvalHubError("Both images of a gold pair must answer the same prompt.")
    if {image_a.run.project_id, image_b.run.project_id} != {campaign.project_id}:
        raise EvalHubError("Gold images must belong to the campaign's project.")
    task, _ = ComparisonTask.objects.update_or_create(
        campaign=campaign, image_a=image_a, image_b=image_b,
        defaults={"prompt_id": image_a.prompt_id, "run_a_id": image_a.run_id,
                  "run_b_id": image_b.run_id, "is_gold": True, "gold_answer": answer,
                  "judgments_needed": 0, "shuffle_key": random.random()},
    )
    return task
