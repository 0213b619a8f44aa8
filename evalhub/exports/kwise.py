"""Best-of-K votes as export rows: as they are (one row per ranking), and expanded to
preference pairs for DPO (docs/exports.md, "Best-of-K rankings").

Expansion: ``implied.implied_pairs``, the rule the pair exports use too (exports/screens.py).

Rows are JSON Lines, written per judgment; the image references are content hashes (the
sha256 of the stored file), as in the other exports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from evalhub.campaigns.models import Campaign, JudgeKind, Judgment, TaskImage, TaskKind
from evalhub.campaigns.quality.annotators import excluded_annotator_ids
from evalhub.core.errors import EvalHubError
from evalhub.exports.implied import implied_pairs
from evalhub.exports.jsonl import iso_utc_text
from evalhub.exports.options import pseudonym
from evalhub.exports.selectors import run_infos
from evalhub.leaderboards.quality_snapshot import current_reliability

KWISE_RAW = "raw"
KWISE_PAIRS = "dpo"
KWISE_FORMATS = (KWISE_RAW, KWISE_PAIRS)
BATCH = 2000


def ranked_judgments(*, campaign: Campaign, include_excluded: bool = False
                     ) -> QuerySet[Judgment]:
    """Live human best-of-K judgments of the campaign (excluded annotators left out unless
    ``include_excluded``), oldest first."""
    qs = (Judgment.objects.filter(campaign=campaign, ranking__isnull=False,
                                  retracted_at__isnull=True, judge_kind=JudgeKind.HUMAN)
          .select_related("task__prompt").order_by("created_at", "id"))
    if not include_excluded:
        qs = qs.exclude(annotator_id__in=excluded_annotator_ids(campaign=campaign))
    return qs


def _members(task_ids: list[int]) -> dict[int, list[TaskImage]]:
    rows = (TaskImage.objects.filter(task_id__in=task_ids)
            .select_related("image__blob", "image__video").order_by("task_id", "position"))
    out: dict[int, list[TaskImage]] = {}
    for row in rows:
        out.setdefault(row.task_id, []).append(row)
    return out


def kwise_rows(*, campaign: Campaign, kind: str, include_excluded: bool = False
               ) -> Iterator[dict[str, Any]]:
    """The export's rows: ``raw`` one per ranking, ``dpo`` one per implied pair."""
    if kind not in KWISE_FORMATS:
        raise ValueError(f"unknown best-of-K export {kind!r}")
    runs = run_infos(campaign=campaign)
    # The pair exports' rule (exports/services.py): the weight a weighted leaderboard gives.
    reliability = current_reliability(campaign=campaign).weights()
    qs = ranked_judgments(campaign=campaign, include_excluded=include_excluded)
    last = (None, 0)
    while True:  # keyset pages: memory stays at one page whatever the campaign's size
        page = list(qs.filter(created_at__gte=last[0]).exclude(
            created_at=last[0], id__lte=last[1])[:BATCH] if last[0] else qs[:BATCH])
        if not page:
            return
        members = _members(sorted({j.task_id for j in page}))
        for judgment in page:
            images = members.get(judgment.task_id, [])
            common = _common(judgment, campaign, reliability)
            yield from (_raw(judgment, images, runs, common, campaign) if kind == KWISE_RAW
                        else _pairs(judgment, images, runs, common))
        last = (page[-1].created_at, page[-1].id)


def _image(member: TaskImage, runs: dict) -> dict[str, Any]:
    """One of the K: ``sha256`` of its image (a video's poster frame), ``video_sha256`` of
    its video file (null for an image)."""
    info = runs.get(member.run_id)
    video = member.image.video
    return {"position": member.position, "image_id": member.image_id,
            "sha256": member.image.blob.sha256,
            "video_sha256": video.sha256 if video is not None else None,
            "run_id": member.run_id,
            "run": info.name if info else None, "model": info.model if info else None}


def _common(judgment: Judgment, campaign: Campaign, reliability: dict[int, float]
            ) -> dict[str, Any]:
    task = judgment.task
    return {
        "campaign_id": campaign.pk, "task_id": task.pk, "judgment_id": judgment.pk,
        "criterion": judgment.criterion, "prompt": task.prompt.text,
        "prompt_category": task.prompt.category or None,
        "annotator": pseudonym(campaign_id=campaign.pk, user_id=judgment.annotator_id),
        "annotator_reliability": reliability.get(judgment.annotator_id),
        "latency_ms": judgment.latency_ms, "created_at": iso_utc_text(judgment.created_at),
    }


def _raw(judgment: Judgment, images: list[TaskImage], runs: dict, common: dict[str, Any],
         campaign: Campaign) -> Iterator[dict[str, Any]]:
    yield {**common, "k": len(images), "rank_all": campaign.rank_all,
           "images": [_image(m, runs) for m in images], "ranking": judgment.ranking,
           "shown_order": judgment.shown_order}


def _pairs(judgment: Judgment, images: list[TaskImage], runs: dict, common: dict[str, Any]
           ) -> Iterator[dict[str, Any]]:
    by_position = {m.position: _image(m, runs) for m in images}
    for pair in implied_pairs(judgment.ranking, len(images)):
        chosen, rejected = by_position[pair.chosen], by_position[pair.rejected]
        # A video output is named by its video file, as in the pair DPO export.
        yield {**common, "chosen": chosen["video_sha256"] or chosen["sha256"],
               "rejected": rejected["video_sha256"] or rejected["sha256"],
               "chosen_image_id": chosen["image_id"], "rejected_image_id": rejected["image_id"],
               "chosen_run": chosen["run"], "rejected_run": rejected["run"],
               "chosen_model": chosen["model"], "rejected_model": rejected["model"],
               "stage": pair.stage, "weight": pair.weight}


def rankings_export_check(campaign: Campaign) -> None:
    """Refuse a campaign that asks for pairs: it has no rankings, and an empty file (or an
    empty 200) read as "no votes yet"."""
    if campaign.task_kind != TaskKind.BEST_OF_K:
        raise EvalHubError(f"Campaign {campaign.pk} asks for pairs, not best of K: it has no "
                           "rankings (export_preferences and export/ export its votes).")


def kwise_jsonl(*, campaign: Campaign, kind: str, include_excluded: bool = False
                ) -> Iterator[bytes]:
    """The rows as JSON Lines, one chunk per row."""
    for row in kwise_rows(campaign=campaign, kind=kind, include_excluded=include_excluded):
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()
