"""Campaigns for the browser tests, with run/model names the page must never show."""

from __future__ import annotations

import io

from PIL import Image as PILImage
from PIL import ImageDraw

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import blob_build_tiles, built_q, large_q
from evalhub.campaigns.models import Campaign, Judgment, Lease
from evalhub.campaigns.serving.voting import to_outcome
from tests.builders import CampaignWorld, build_campaign

# Distinctive, so a leak anywhere in HTML, JSON or a URL is found by a plain substring search.
SECRET_NAMES = ["zebrafalcon-model", "ckpt-quasar-7731", "run-nebula-alpha", "run-nebula-beta"]


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
                instructions: str = "",
                source: bool = False, fmt: str = "PNG", tiles: bool = True) -> CampaignWorld:
    """Two runs (of one secretly named model) answering ``prompts`` prompts; one annotator.
    No instructions unless given: they open as a sheet over the page on the first visit
    (pages.dismiss_instructions).
    Images over 4096 px get their tiles here, as a worker builds them after an import (the
    rating API serves such a campaign only then); ``tiles=False`` leaves that to the test
    (the campaign is "preparing images" until then)."""
    world = build_campaign(
        runs=2, prompts=prompts, annotators=1, run_names=SECRET_NAMES[2:],
        model_name=SECRET_NAMES[0], checkpoint_names=[f"{SECRET_NAMES[1]}{i}" for i in range(2)],
        prompt_text=lambda i: f"a white shape on a coloured background, variant {i}",
        source_image=(lambda i: picture(i + 50, (512, 512))) if source else None,
        image_bytes=lambda p, r: picture(p * 2 + r, sizes[r], fmt=fmt),
        name="Shapes study", criteria=list(criteria), judgments_per_pair=1,
        instructions=instructions)
    if tiles:
        build_tiles()
    return world


def build_tiles(limit: int | None = None) -> int:
    """Build the missing pyramids of large images (at most ``limit``), as the worker's
    evalhub.blobs.build_tiles task does; returns how many were built."""
    missing = ImageBlob.objects.filter(large_q()).exclude(built_q()).order_by("pk")
    return sum(blob_build_tiles(blob) for blob in missing[:limit])


def expected_outcome(lease_id: str, answer: str) -> str:
    """What the database must hold for ``answer`` given where image A was shown."""
    return to_outcome(answer, a_side=Lease.objects.get(pk=lease_id).a_side)


def live_judgments(campaign: Campaign):
    return Judgment.objects.filter(campaign=campaign, retracted_at__isnull=True)
