"""The tasks of a best-of-K campaign: one prompt, K runs, one image per run.

Which K-sets: for every prompt row (a prompt and a seed all K runs have, else the i-th image of
each run in seed order), the campaign's runs are shuffled (a generator seeded with the campaign
id, so a redelivered build draws the same sets) and cut into groups of K; the last group is
filled up with runs drawn from the others. Every run is therefore shown on every prompt row at
least once, and with N runs a prompt row gives ceil(N / K) tasks (one when N = K).

A task's images sit at canonical positions 0..K-1 ordered by run id (:class:`TaskImage`); the
page shows them in a random order per lease (``Lease.order``), and votes are stored in
canonical positions (``Judgment.ranking``).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.campaigns.building.pairs import images_on_prompts
from evalhub.campaigns.models import Campaign, ComparisonTask, TaskImage
from evalhub.runs.models import GenerationRun, Image


@dataclass(frozen=True)
class KSet:
    """K images of one prompt, one per run, by run id (canonical positions)."""

    prompt_id: int
    images: tuple[Image, ...]

    @property
    def key(self) -> str:
        return ",".join(str(image.pk) for image in self.images)

    @property
    def holds_a_file_twice(self) -> bool:
        """Two runs made the very same file (content-addressed): which of the two is better
        is no judgment, so the set is not asked, as a pair of one file is not."""
        files = {image.file_key for image in self.images}
        return len(files) < len(self.images)


def task_shows_a_file_twice(*, task_id: int) -> bool:
    """Whether a built best-of-K task's K-set holds a file twice
    (:attr:`KSet.holds_a_file_twice`); only sets built before such sets were skipped do
    (migration campaigns 0015 retired them). A pair task has no K-set: False."""
    images = tuple(member.image for member in TaskImage.objects.filter(task_id=task_id)
                   .select_related("image").order_by("position"))
    return bool(images) and KSet(images[0].prompt_id, images).holds_a_file_twice


def _prompt_rows(runs: Sequence[GenerationRun], category: str
                 ) -> list[tuple[int, dict[int, Image]]]:
    """(prompt id, run id -> image) per prompt row: shared seeds first, else seeds in order."""
    images = images_on_prompts(runs, category).order_by("seed", "pk")
    by_prompt: dict[int, dict[int, list[Image]]] = defaultdict(lambda: defaultdict(list))
    for image in images:
        by_prompt[image.prompt_id][image.run_id].append(image)
    rows = []
    for prompt_id in sorted(by_prompt):
        per_run = by_prompt[prompt_id]
        seeds = [{img.seed for img in per_run.get(run.pk, [])} for run in runs]
        common = sorted(set.intersection(*seeds)) if seeds else []
        if common:
            for seed in common:
                rows.append((prompt_id, {run_id: next(i for i in imgs if i.seed == seed)
                                         for run_id, imgs in per_run.items()}))
        else:
            depth = min((len(per_run.get(run.pk, [])) for run in runs), default=0)
            rows += [(prompt_id, {run_id: imgs[i] for run_id, imgs in per_run.items()})
                     for i in range(depth)]
    return rows


def k_sets(runs: Sequence[GenerationRun], *, k: int, category: str, rng: random.Random
           ) -> list[KSet]:
    """The campaign's K-sets (module docstring). A prompt row needs an image of every run."""
    sets = []
    for prompt_id, by_run in _prompt_rows(runs, category):
        present = sorted(by_run)
        if len(present) < k:
            continue
        order = rng.sample(present, len(present))
        for g in range(math.ceil(len(order) / k)):
            group = order[g * k:(g + 1) * k]
            if len(group) < k:
                others = [r for r in order if r not in group]
                group += rng.sample(others, k - len(group))
            sets.append(KSet(prompt_id, tuple(by_run[r] for r in sorted(group))))
    return sets


@dataclass(frozen=True)
class KwiseBuild:
    sets: int  # K-sets drawn
    created: int  # tasks created now
    identical: int  # K-sets not asked: a file twice (:attr:`KSet.holds_a_file_twice`)


def build_kwise_tasks(*, campaign: Campaign, runs: Sequence[GenerationRun]) -> KwiseBuild:
    """Create the missing best-of-K tasks with their images (idempotent: a K-set already built
    is recognised by its ``members_key``). The caller holds the transaction."""
    rng = random.Random(campaign.pk)
    sets = k_sets(runs, k=campaign.k, category=campaign.prompt_category, rng=rng)
    existing = set(campaign.tasks.values_list("members_key", flat=True))
    new = [s for s in sets if s.key not in existing and not s.holds_a_file_twice]
    tasks = ComparisonTask.objects.bulk_create([
        ComparisonTask(campaign=campaign, prompt_id=s.prompt_id, image_a=s.images[0],
                       image_b=s.images[1], run_a_id=s.images[0].run_id,
                       run_b_id=s.images[1].run_id, members_key=s.key,
                       judgments_needed=campaign.judgments_per_pair, shuffle_key=rng.random())
        for s in new], batch_size=1000)
    if any(t.pk is None for t in tasks):  # backends without RETURNING (none we support)
        by_key = dict(campaign.tasks.values_list("members_key", "pk"))
        for task, s in zip(tasks, new, strict=True):
            task.pk = by_key[s.key]
    TaskImage.objects.bulk_create([
        TaskImage(task_id=task.pk, position=p, image=image, run_id=image.run_id)
        for task, s in zip(tasks, new, strict=True) for p, image in enumerate(s.images)],
        batch_size=1000)
    return KwiseBuild(sets=len(sets), created=len(new),
                      identical=sum(s.holds_a_file_twice for s in sets))
