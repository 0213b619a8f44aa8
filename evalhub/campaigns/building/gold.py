"""Gold pairs: tasks with a known answer, served among the others to measure annotators."""

from __future__ import annotations

import random

from evalhub.campaigns.models import Campaign, ComparisonTask, Outcome, TaskKind
from evalhub.campaigns.services import check_not_over
from evalhub.core.errors import EvalHubError
from evalhub.projects.references import ForeignReference, check_same_project
from evalhub.runs.models import Image


def gold_task_add(*, campaign: Campaign, image_a: Image, image_b: Image, answer: str
                  ) -> ComparisonTask:
    """Add a gold pair with a known answer ("a" means ``image_a`` is better). Pair campaigns
    only: a best-of-K campaign has no gold tasks (``campaign_create``); and not to a campaign
    that is over (closed or failed: ``check_not_over``)."""
    check_not_over(campaign, adding="gold pairs")
    if campaign.task_kind != TaskKind.PAIR:
        raise EvalHubError("Gold pairs are for pair campaigns: a best-of-K campaign has no "
                           "gold tasks.")
    if answer not in (Outcome.A, Outcome.B, Outcome.TIE):
        raise EvalHubError("A gold answer is 'a', 'b' or 'tie'.")
    if image_a.pk == image_b.pk:
        # An image compared with itself has no better side: the "known" answer would measure
        # nothing but which side an annotator clicks.
        raise EvalHubError("A gold pair compares two different images: image_a and image_b "
                           "are the same image.")
    if image_a.file_key == image_b.file_key:
        # Two rows, one file (a run imported twice, say: blobs are content-addressed): the
        # same as comparing an image with itself. A video is its file, not its poster.
        medium = "video" if image_a.video_id else "image"
        raise EvalHubError(f"A gold pair compares two different {medium}s: {medium}s "
                           f"{image_a.pk} and {image_b.pk} are the same file (identical "
                           "content), so neither can be better.")
    if image_a.prompt_id != image_b.prompt_id:
        raise EvalHubError("Both images of a gold pair must answer the same prompt.")
    check_same_project(campaign.project_id, image_a=image_a, image_b=image_b)
    task, _ = ComparisonTask.objects.update_or_create(
        campaign=campaign, image_a=image_a, image_b=image_b,
        defaults={"prompt_id": image_a.prompt_id, "run_a_id": image_a.run_id,
                  "run_b_id": image_b.run_id, "is_gold": True, "gold_answer": answer,
                  "judgments_needed": 0, "shuffle_key": random.random()},
    )
    return task


def gold_task_remove(*, campaign: Campaign, task_id: int) -> None:
    """Remove a gold pair of ``campaign`` that nobody has voted on.

    A gold pair with votes stays: its votes are the evidence of annotators' gold accuracy, and
    deleting the pair would delete them. A wrong answer is corrected by adding the same pair
    again with the right one (``gold_task_add`` updates it). Another campaign's task, or one
    that is not gold, is refused like an id that does not exist.
    """
    task = ComparisonTask.objects.filter(pk=task_id, campaign=campaign, is_gold=True).first()
    if task is None:
        raise ForeignReference("task: no such gold pair in this campaign.", details=["task"])
    votes = task.judgments.count()
    if votes:
        raise EvalHubError(f"This gold pair has {votes} vote{'s' if votes != 1 else ''}, the "
                           "evidence of annotators' gold accuracy: it stays. Add it again "
                           "with another answer to correct it.")
    task.delete()
