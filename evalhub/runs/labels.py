"""How pickers name a run: the one label of the campaign form's run list and the gallery's."""

from __future__ import annotations


def run_label(*, model: str, checkpoint: str, step: int | None, run: str,
              prompt_set: str = "") -> str:
    """``"model / checkpoint (step 1000) / run — prompt set"``: runs of two models may share
    checkpoint and run names, so the model comes first; the step only when the checkpoint has
    one, the prompt set only when given."""
    step_text = "" if step is None else f" (step {step})"
    label = f"{model} / {checkpoint}{step_text} / {run}"
    return f"{label} — {prompt_set}" if prompt_set else label
