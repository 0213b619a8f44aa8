"""What the annotator page receives for a task: the prompt and two anonymous images.

Nothing here may identify a run, checkpoint or model: images are EvalHub's own display copies
(metadata stripped) under opaque names (evalhub/blobs/display.py), never the imported files.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import display_token
from evalhub.blobs.tiles import needs_tiles
from evalhub.blobs.views import display_url
from evalhub.campaigns.models import Campaign, Criterion, Lease


def image_payload(blob: ImageBlob) -> dict[str, Any]:
    """The page's view of one image: the display derivative's URL (pixels re-encoded without
    metadata, under an opaque keyed name; blobs/display.py), its size, and the tile pyramid's
    descriptor for images large enough to get one. Never the original file or its hash."""
    # Images large enough to get a pyramid are opened tile by tile, never whole.
    tiled = needs_tiles(blob)
    token = blob.display_token or display_token(blob.sha256)
    return {
        "url": display_url(blob),
        "width": blob.width,
        "height": blob.height,
        "tiles": f"/rate/tiles/{token}.dzi" if tiled else None,
    }


def criteria_payload(campaign: Campaign) -> list[dict[str, str]]:
    labels = dict(Criterion.choices)
    return [{"key": key, "question": labels[key]} for key in campaign.criteria]


def _task_payload(*, lease_id: str, expires_at: datetime, a_side: str, prompt: str,
                  source: ImageBlob | None, image_a: ImageBlob,
                  image_b: ImageBlob) -> dict[str, Any]:
    left, right = (image_a, image_b) if a_side == "left" else (image_b, image_a)
    return {
        "lease": lease_id,
        "expires_at": expires_at.isoformat(),
        "prompt": prompt,
        "source_image": image_payload(source) if source else None,
        "left": image_payload(left),
        "right": image_payload(right),
    }


def lease_payload(lease: Lease) -> dict[str, Any]:
    task = lease.task
    return _task_payload(lease_id=str(lease.pk), expires_at=lease.expires_at,
                         a_side=lease.a_side, prompt=task.prompt.text,
                         source=task.prompt.source_image, image_a=task.image_a.blob,
                         image_b=task.image_b.blob)
