"""Downscaled previews of stored images."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

from evalhub.blobs.locks import blob_lock
from evalhub.blobs.models import ImageBlob

PREVIEW_MAX_SIDE = 512


def render_preview(data: bytes, *, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """WebP no larger than ``max_side`` on its long side, in 8-bit RGB(A)."""
    with Image.open(io.BytesIO(data)) as img:
        # A JPEG decodes at 1/2..1/8 scale (what thumbnail() would ask for too); every other
        # format decodes once and is turned in place: a 16K image is never held twice.
        img.draft("RGB", (2 * max_side, 2 * max_side))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        img.save(out, format="WEBP", quality=85, method=4)
        return out.getvalue()


def blob_make_preview(blob: ImageBlob) -> bool:
    """Create the blob's preview unless it has one. Returns whether one was made.

    Idempotent, so a redelivered task does no harm. Two tasks may reach one blob at once (the
    blob's own, queued when its bytes were first stored, and the preview task of each image
    that uses it: runs/previews.py): on one host they wait for each other (file lock) and the
    second finds the first one's preview; on different hosts they write identical bytes to the
    same name.
    """
    if blob.preview:
        return False
    with blob_lock("preview", blob.sha256):
        current = ImageBlob.objects.filter(pk=blob.pk).values_list("preview", flat=True).first()
        if current:
            blob.preview = current
            return False
        with default_storage.open(blob.file.name, "rb") as handle:
            preview = render_preview(handle.read())
        path = f"previews/{blob.sha256[:2]}/{blob.sha256}.webp"
        if default_storage.exists(path):
            default_storage.delete(path)
        saved = default_storage.save(path, ContentFile(preview))
        ImageBlob.objects.filter(pk=blob.pk).update(preview=saved)
        blob.preview = saved
    return True
