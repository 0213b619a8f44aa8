"""Which (prompt, seed) items a generated run consists of, and how they split into batches.

The order is deterministic (prompt position, then seed order), so batch ``k`` always names the
same items and a redelivered batch task redoes exactly its own share.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalhub.core.errors import EvalHubError
from evalhub.prompts.models import Prompt
from evalhub.runs.models import MAX_SEEDS, GenerationRun

#: Seeds one run may list (a typo such as "0-1000000" is refused, not a million items queued).


def parse_seeds(text: str) -> list[int]:
    """``"0-3,10"`` -> ``[0, 1, 2, 3, 10]``: seeds and inclusive ranges (``low-high``), at
    most :data:`MAX_SEEDS`; anything else is refused naming the part. Negative numbers parse
    (``"-2-1"``): ``run_create``, which every way of creating a run goes through, refuses them."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if "-" in part[1:]:
                low, high = (part.split("-", 1) if not part.startswith("-")
                             else part.rsplit("-", 1))
                first, last = int(low), int(high)
                if last < first:
                    raise EvalHubError(f"{text!r}: the range {part!r} is empty; write the lower "
                                       "seed first (e.g. 0-3).")
                if last - first + 1 > MAX_SEEDS - len(seeds):
                    raise EvalHubError(f"{text!r}: more than {MAX_SEEDS} seeds.")
                seeds.extend(range(first, last + 1))
            elif part:
                seeds.append(int(part))
        except ValueError as exc:
            raise EvalHubError(f"{text!r}: {part!r} is not a seed or a range of seeds "
                               "(e.g. 0-3,10).") from exc
    if len(seeds) > MAX_SEEDS:
        raise EvalHubError(f"{text!r}: more than {MAX_SEEDS} seeds.")
    return seeds


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
