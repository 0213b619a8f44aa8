"""Which (prompt, seed) items a generated run consists of, and how they split into batches.

The order is deterministic (prompt position, then seed order), so batch ``k`` always names the
same items and a redelivered batch task redoes exactly its own share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evalhub.core.errors import EvalHubError
from evalhub.prompts.models import Prompt
from evalhub.runs.models import MAX_SEEDS, GenerationRun

#: How format_seeds writes a range of seeds (as typeset); parse_seeds reads it too.
RANGE_DASH = "\N{EN DASH}"

#: Seeds one run may list (a typo such as "0-1000000" is refused, not a million items queued).


def parse_seeds(text: str) -> list[int]:
    """``"0-3,10"`` -> ``[0, 1, 2, 3, 10]``: seeds and inclusive ranges (``low-high``), at
    most :data:`MAX_SEEDS`; anything else is refused naming the part. Negative numbers parse
    (``"-2-1"``): ``run_create``, which every way of creating a run goes through, refuses them."""
    seeds: list[int] = []
    # An en dash reads as a range too: the way format_seeds writes one.
    for raw in text.split(","):
        part = raw.strip().replace(RANGE_DASH, "-")
        # The whole text is named only when it holds more than the part at fault.
        where = f"{text!r}: " if text.strip() != raw.strip() else ""
        try:
            if "-" in part[1:]:
                low, high = (part.split("-", 1) if not part.startswith("-")
                             else part.rsplit("-", 1))
                first, last = int(low), int(high)
                if last < first:
                    raise EvalHubError(f"{where}the range {part!r} is empty; write the lower "
                                       "seed first (e.g. 0-3).")
                if last - first + 1 > MAX_SEEDS - len(seeds):
                    raise EvalHubError(f"{text!r}: more than {MAX_SEEDS} seeds.")
                seeds.extend(range(first, last + 1))
            elif part:
                seeds.append(int(part))
        except ValueError as exc:
            raise EvalHubError(f"{where}{part!r} is not a seed or a range of seeds "
                               "(e.g. 0-3,10).") from exc
    if len(seeds) > MAX_SEEDS:
        raise EvalHubError(f"{text!r}: more than {MAX_SEEDS} seeds.")
    return seeds


def format_seeds(seeds: Sequence[int], *, max_parts: int = 20) -> str:
    """``[0, 1, 2, 3, 7]`` -> ``"0-3, 7"`` (the range with an en dash, :data:`RANGE_DASH`):
    runs of three or more consecutive seeds (in the given order) as ranges, which
    :func:`parse_seeds` reads back. Past ``max_parts`` parts the rest is left out and the
    count said ("0, 2, 4, …; 100000 seeds in all"): a run may hold up to :data:`MAX_SEEDS`
    seeds, which a page should not print one by one."""
    parts: list[str] = []
    start = 0
    while start < len(seeds) and len(parts) <= max_parts:
        end = start
        while end + 1 < len(seeds) and seeds[end + 1] == seeds[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{seeds[start]}{RANGE_DASH}{seeds[end]}")
        else:
            parts += [str(seed) for seed in seeds[start:end + 1]]
        start = end + 1
    if len(parts) > max_parts or start < len(seeds):
        return f"{', '.join(parts[:max_parts])}, …; {len(seeds)} seeds in all"
    return ", ".join(parts)


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
