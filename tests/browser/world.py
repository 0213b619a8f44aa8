"""Campaigns for the browser tests, with run/model names the page must never show."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import ImageDraw

from evalhub.blobs.services import blob_store_bytes
from evalhub.campaigns.models import Campaign, Judgment, Lease
from evalhub.campaigns.services import campaign_create
from evalhub.campaigns.serving.voting import to_outcome
from evalhub.projects.models import Role
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    ProjectFactory,
    PromptFactory,
    PromptSetFactory,
)

# Distinctive, so a leak anywhere in HTML, JSON or a URL is found by a plain substring search.
SECRET_NAMES = ["zebrafalcon-model", "ckpt-quasar-7731", "run-nebula-alpha", "run-nebula-beta"]


@dataclass
class World:
    campaign: Campaign
    annotator: object


def picture(seed: int, size: tuple[int, int], *, fmt: str = "PNG") -> bytes:
    """A calm test picture: a coloured background with a shape, different per seed."""
    colours = [(70, 110, 160), (170, 90, 70), (90, 150, 100), (150, 130, 60), (120, 90, 150)]
    img = PILImage.new("RGB", size, colours[seed % len(colours)])
    draw = ImageDraw.Draw(img)
    w, h = size
    box = (w * (2 + seed % 3) // 10, h // 4, w * (6 + seed % 3) // 10, h * 3 // 4)
    (draw.ellipse if seed % 2 else draw.rectangle)(box, fill=(235, 235, 225))
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 1}))
    return out.getvalue()


def build_world(*, prompts: int = 6, criteria=("overall",), sizes=((768, 768), (1024, 1024)),
                instructions: str = "Pick the image that follows the prompt better.",
                source: bool = False, fmt: str = "PNG") -> World:
    """Two runs (of one secretly named model) answering ``prompts`` prompts; one annotator."""
    project = ProjectFactory()
    prompt_set = PromptSetFactory(project=project)
    model = GenModelFactory(project=project, name=SECRET_NAMES[0])
    runs = [
        GenerationRunFactory(
            checkpoint=CheckpointFactory(model=model, name=f"{SECRET_NAMES[1]}{i}"),
            prompt_set=prompt_set, name=SECRET_NAMES[2 + i])
        for i in range(2)
    ]
    for index in range(prompts):
        source_blob = (blob_store_bytes(picture(index + 50, (512, 512)), name="src.png")
                       if source else None)
        prompt = PromptFactory(prompt_set=prompt_set, position=index, source_image=source_blob,
                               text=f"a white shape on a coloured background, variant {index}")
        for run_index, run in enumerate(runs):
            data = picture(index * 2 + run_index, sizes[run_index], fmt=fmt)
            ImageFactory(run=run, prompt=prompt, seed=0,
                         blob=blob_store_bytes(data, name=f"{index}-{run_index}.png"))
    annotator = MembershipFactory(project=project, role=Role.ANNOTATOR).user
    campaign = campaign_create(project=project, name="Shapes study", runs=runs,
                               criteria=list(criteria), judgments_per_pair=1,
                               instructions=instructions, build_now=True)
    return World(campaign, annotator)


def expected_outcome(lease_id: str, answer: str) -> str:
    """What the database must hold for ``answer`` given where image A was shown."""
    return to_outcome(answer, a_side=Lease.objects.get(pk=lease_id).a_side)


def live_judgments(campaign: Campaign):
    return Judgment.objects.filter(campaign=campaign, retracted_at__isnull=True)
