"""Image rows stored before import applied EXIF orientation get the size of the picture as
shown (evalhub/blobs/validation.py since then: a photo whose EXIF orientation is 5-8 is a
quarter turn, so shown its width is the file's height). Every derivative, preview and tile
was already drawn turned; only the stored ``width`` and ``height`` (the rating payload's
pyramid geometry, the zoom's image size) still said the file's.

Data only, idempotent: the size is set from the file's header (width := header height,
height := header width), never swapped from the stored one, so a row already right (imported
since, or migrated before) is left as it is. Reverse: nothing (the old sizes were wrong).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from django.core.files.storage import Storage
from django.db import migrations

logger = logging.getLogger("evalhub.blobs")

#: Rows read and updated per query (one SELECT and at most one bulk UPDATE per batch).
BATCH = 500
#: EXIF orientations that turn the picture a quarter turn (validation._QUARTER_TURNS when this
#: migration was written).
QUARTER_TURNS = frozenset({5, 6, 7, 8})
ORIENTATION_TAG = 0x0112
IMAGE_WIDTH, IMAGE_LENGTH = 256, 257  # TIFF tags
#: Formats that can carry an EXIF orientation (GIF and BMP cannot).
EXIF_FORMATS = ("JPEG", "WEBP", "TIFF", "PNG")


@dataclass
class Corrected:
    """What :func:`correct_sizes` did: rows ``checked``, ``corrected``, and skipped because
    their file is ``missing`` from storage or ``unreadable`` (not an image any more)."""

    checked: int = 0
    corrected: int = 0
    missing: int = 0
    unreadable: int = 0


def shown_size(fp: BinaryIO) -> tuple[int, int]:
    """(width, height) of the picture in ``fp`` as shown, from its header only (pixels).

    Pillow's open reads the header and, for JPEG and WebP, the EXIF segment; the pixels are
    never decoded. Image.getexif of the base class is asked, not PNG's own (that one decodes
    the whole image to look for an eXIf chunk after the pixel data): a PNG's orientation is
    read from the chunks before it, where the PNG specification puts eXIf.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # nothing is decoded
        with Image.open(fp) as img:
            width, height = img.size
            if hasattr(img, "tag_v2"):
                # TIFF: the file's own width and length tags (Pillow's reader already reports
                # the size turned, and turns the pixels when it loads them).
                width, height = img.tag_v2[IMAGE_WIDTH], img.tag_v2[IMAGE_LENGTH]
            orientation = Image.Image.getexif(img).get(ORIENTATION_TAG, 1)
    return (height, width) if orientation in QUARTER_TURNS else (width, height)


def correct_sizes(image_blob_model: type, storage: Storage, *, batch: int = BATCH
                  ) -> Corrected:
    """Set each image row's ``width`` and ``height`` to its file's size as shown, batch by
    batch in primary key order (no long transaction, no whole table in memory); files are
    opened one at a time and only their headers read."""
    from django.db.models import F
    from PIL import UnidentifiedImageError

    done = Corrected()
    # A square image is the same size turned: its file need not be opened.
    rows = (image_blob_model.objects.filter(format__in=EXIF_FORMATS)
            .exclude(width=F("height")).order_by("pk").only("pk", "file", "width", "height"))
    last = 0
    while page := list(rows.filter(pk__gt=last)[:batch]):
        last = page[-1].pk
        changed = []
        for blob in page:
            done.checked += 1
            try:
                with storage.open(blob.file.name, "rb") as fp:
                    size = shown_size(fp)
            except FileNotFoundError:
                done.missing += 1
                continue
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                # Pillow's DecompressionBombError is a ValueError; a storage's own "not
                # found" (not every backend raises FileNotFoundError) is an OSError too.
                if not storage.exists(blob.file.name):
                    done.missing += 1
                    continue
                logger.warning("image blob %s (%s): header unreadable, size kept: %s",
                               blob.pk, blob.file.name, exc)
                done.unreadable += 1
                continue
            if size != (blob.width, blob.height):
                blob.width, blob.height = size
                changed.append(blob)
        if changed:
            image_blob_model.objects.bulk_update(changed, ["width", "height"])
            done.corrected += len(changed)
    return done


def correct_quarter_turned_sizes(apps, schema_editor) -> None:
    from django.core.files.storage import default_storage

    done = correct_sizes(apps.get_model("blobs", "ImageBlob"), default_storage)
    if done.corrected or done.missing or done.unreadable:
        logger.warning(
            "blobs 0005: %d image sizes corrected for EXIF orientation, of %d checked; "
            "skipped %d with their file missing and %d unreadable",
            done.corrected, done.checked, done.missing, done.unreadable)


class Migration(migrations.Migration):
    # Batches commit one by one: a crash part-way keeps what was done, and the migration run
    # again (idempotent) changes only what is still wrong.
    atomic = False

    dependencies = [
        ("blobs", "0004_video_blobs"),
    ]

    operations = [
        migrations.RunPython(correct_quarter_turned_sizes, migrations.RunPython.noop,
                             elidable=True),
    ]
