"""Best-of-K tasks in serving: the page's payload, the votes' rankings, reported images.

A best-of-K lease carries ``order``: the task's canonical positions (0..K-1, runs by id) in the
order the page shows them, a fresh permutation per lease. The page names images by *slot*
(0..K-1 as displayed, keys 1..K); everything stored is in canonical positions, so position
bias can still be measured (``Judgment.shown_order`` keeps the lease's order).
"""

from __future__ import annotations

from typing import Any

from evalhub.campaigns.models import Campaign, Lease, TaskImage
from evalhub.campaigns.serving.payloads import image_payload, lease_project_id
from evalhub.core.converters import object_id
from evalhub.core.errors import EvalHubError
from evalhub.runs.models import Image

KWISE_ONLY_RANKINGS = ("This is a best-of-K task: send 'rankings' (criterion -> the picked "
                       "slots, best first), not 'answers'.")
PAIRS_ONLY_ANSWERS = "This is a pair task: send 'answers', not 'rankings'."


def _members(lease: Lease) -> list[TaskImage]:
    """The task's K images by canonical position, with their videos (one query)."""
    return list(TaskImage.objects.filter(task_id=lease.task_id)
                .select_related("image__blob", "image__video__poster").order_by("position"))


def kwise_payload(lease: Lease) -> dict[str, Any]:
    """The page's view of a best-of-K lease: the prompt and K anonymous images in the lease's
    order; nothing names a run, a position or an image id (one query for the K images).
    Each image carries ``video`` as the pair payload does (null for images)."""
    task = lease.task
    members = _members(lease)
    source = task.prompt.source_image
    project_id = lease_project_id(lease)  # the names are the project's (blobs/names.py)
    return {
        "lease": str(lease.pk),
        "expires_at": lease.expires_at.isoformat(),
        "prompt": task.prompt.text,
        "source_image": (image_payload(source, task.prompt.source_video, project_id=project_id)
                         if source else None),
        "kind": "best_of_k",
        "images": [image_payload(members[position].image.blob, members[position].image.video,
                                 project_id=project_id)
                   for position in lease.order],
    }


def image_in_slot(lease: Lease, side: str) -> Image:
    """The image a best-of-K lease shows in slot ``side`` ("0".."K-1"), for a report."""
    slot = object_id(side)
    if slot is None or slot >= len(lease.order):
        raise EvalHubError(f"Report an image by its slot, 0 to {len(lease.order) - 1}, "
                           "or 'source'.")
    position = lease.order[slot]
    return TaskImage.objects.select_related("image").get(
        task_id=lease.task_id, position=position).image


def canonical_rankings(*, lease: Lease, campaign: Campaign, answers: dict[str, Any],
                       rankings: dict[str, list[int]]) -> dict[str, list[int]]:
    """Criterion -> the picked canonical positions, best first, from the slots the page sent.

    Best of K takes one pick per criterion; rank-all takes K - 1 or K picks (the last is forced
    and is appended when missing), so a stored rank-all ranking always lists all K positions.
    """
    if answers:
        raise EvalHubError(KWISE_ONLY_RANKINGS)
    k = len(lease.order)
    missing = [c for c in campaign.criteria if c not in rankings]
    extra = [c for c in rankings if c not in campaign.criteria]
    if missing or extra:
        raise EvalHubError(
            f"Rank for every criterion of this campaign ({', '.join(campaign.criteria)}); "
            f"missing {missing or 'none'}, unknown {extra or 'none'}.")
    out = {}
    for criterion, slots in rankings.items():
        if len(set(slots)) != len(slots) or any(not 0 <= s < k for s in slots):
            raise EvalHubError(f"Picks must be distinct slots between 0 and {k - 1}.")
        if campaign.rank_all:
            if len(slots) not in (k - 1, k):
                raise EvalHubError(f"Rank all {k} images (at least {k - 1} picks).")
            if len(slots) == k - 1:
                slots = [*slots, next(s for s in range(k) if s not in slots)]
        elif len(slots) != 1:
            raise EvalHubError("Pick exactly one image: the best.")
        out[criterion] = [lease.order[s] for s in slots]
    return out
