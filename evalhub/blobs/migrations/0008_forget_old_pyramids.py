"""Pyramids built before tile formats were recorded (``0007``) followed the file's mode: WebP
tiles for any mode with an alpha channel (an RGBA file whose alpha is 255 everywhere too),
one-channel JPEG for greyscale, so their format told runs apart. Those are forgotten here
(``tiles_built_at`` cleared; a pyramid without a recorded format counts as not built anyway,
blobs/tiles.py ``pyramid_built``), and the usual path rebuilds them: a campaign that shows one
queues its build (campaigns/building/images.py), as the descriptor view does; the build wipes
the old tiles first. An RGB file's tiles were already RGB JPEG at the same quality, which is
what a rebuild writes: they are kept, recorded as ``jpeg``. (An RGB PNG with a transparent
colour key had JPEG tiles without its transparency; a rebuild would make them WebP. They look
like any opaque image's, so nothing tells runs apart, and they are kept too.)

Its own migration, so its own transaction: two UPDATEs that scan the table take row locks
only, never the exclusive lock of ``0007``'s ALTER TABLE, so serving media, tiles and the
rating page goes on meanwhile (the rows they read are not locked against reads).
"""

from django.db import migrations, models

# The tiling threshold when this migration was written (evalhub.blobs.tiles.TILE_MIN_SIDE_PX).
TILE_MIN_SIDE_PX = 4096


def forget_pyramids_of_the_old_rule(apps, schema_editor) -> None:
    ImageBlob = apps.get_model("blobs", "ImageBlob")
    built = ImageBlob.objects.filter(
        models.Q(width__gt=TILE_MIN_SIDE_PX) | models.Q(height__gt=TILE_MIN_SIDE_PX),
        tiles_built_at__isnull=False, tiles_format="")
    built.filter(mode="RGB").update(tiles_format="jpeg")
    built.exclude(mode="RGB").update(tiles_built_at=None, tiles_claimed_until=None)


class Migration(migrations.Migration):

    dependencies = [
        ("blobs", "0007_tiles_format_from_pixels"),
    ]

    operations = [
        migrations.RunPython(forget_pyramids_of_the_old_rule, migrations.RunPython.noop),
    ]
