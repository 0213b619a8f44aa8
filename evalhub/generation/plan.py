"""Which (prompt, seed) items a generated run consists of, and how they split into batches.

The order is deterministic (prompt position, then seed order), so batch ``k`` always names the
same items and a redelivered batch task redoes exactly its own share.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalhub.prompts.models import Prompt
from evalhub.runs.models import GenerationRun


@dataclass(frozen=True)
class PlannedItem:
    prompt_id: int
    seed: int


def run_items(run: GenerationRun) -> list[PlannedItem]:
    prompt_ids = Prompt.objects.filter(prompt_set=run.prompt_set).order_by("position").values_list(
        "id", flat=True
    )
    return [PlannedItem(pid, int(seed)) for pid in prompt_ids for seed in run.seeds]


def batch_bounds(total: int, batch_size: int) -> list[tuple[int, int]]:
    """Half-open ``[start, stop)`` index ranges covering ``range(total)``."""
    return [(start, min(start + batch_size, total)) for start in range(0, total, batch_size)]
