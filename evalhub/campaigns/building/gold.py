"""Gold pairs: tasks with a known answer, served among the others to measure annotators."""

from __future__ import annotations

import random

from evalhub.campaigns.models import Campaign, ComparisonTask, Outcome
from evalhub.core.errors import EvalHubError
from evalhub.projects.references import check_same_project
from evalhub.runs.models import Image


def gold_task_add(*, campaign: Campaign, image_a: Image, image_b: Image, answer: str
                  ) -> ComparisonTask:
    """Add a gold pair with a known answer ("a" means ``image_a`` is better)."""
    if answer not in (Outcome.A, Outcome.B, Outcome.TIE):
        raise EvalHubError("A gold answer is 'a', 'b' or 'tie'.")
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
