"""What the annotator page receives for a task: the prompt and two anonymous images.

Nothing here may identify a run, checkpoint or model: images are addressed by content hash.
"""

from __future__ import annotations

from typing import Any

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import needs_tiles
from evalhub.campaigns.models import Campaign, Criterion, Lease


def image_payload(blob: ImageBlob) -> dict[str, Any]:
    # Images large enough to get a pyramid are opened tile by tile, never whole.
    tiled = needs_tiles(blob)
    return {
        "url": blob.file.url,
        "width": blob.width,
        "height": blob.height,
        "tiles": f"/rate/tiles/{blob.sha256}.dzi" if tiled else None,
    }


def criteria_payload(campaign: Campaign) -> list[dict[str, str]]:
    labels = dict(Criterion.choices)
    return [{"key": key, "question": labels[key]} for key in campaign.criteria]


def lease_payload(lease: Lease) -> dict[str, Any]:
    task = lease.task
    image_a, image_b = task.image_a.blob, task.image_b.blob
    left, right = (image_a, image_b) if lease.a_side == "left" else (image_b, image_a)
    source = task.prompt.source_image
    return {
        "lease": str(lease.pk),
        "expires_at": lease.expires_at.isoformat(),
        "prompt": task.prompt.text,
        "source_image": image_payload(source) if source else None,
        "left": image_payload(left),
        "right": image_payload(right),
    }


def lease_queryset():
    from evalhub.campaigns.leasing import TASK_PAYLOAD_RELATIONS

    return Lease.objects.select_related(*(f"task__{r}" for r in TASK_PAYLOAD_RELATIONS))
