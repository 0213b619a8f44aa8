"""Tiles are encoded by the pixels' transparency, not by the file's mode (blobs/tiles.py,
"Formats"), and the build records the format on the blob.

Pyramids built before followed the file's mode: WebP tiles for any mode with an alpha channel
(an RGBA file whose alpha is 255 everywhere too), one-channel JPEG for greyscale, so their
format told runs apart. Those are forgotten here (``tiles_built_at`` cleared), and the usual
path rebuilds them: a campaign that shows one queues its build (campaigns/building/images.py),
as the descriptor view does; the build wipes the old tiles first. An RGB file's tiles were
already RGB JPEG at the same quality, which is what a rebuild writes: they are kept, recorded
as ``jpeg``. (An RGB PNG with a transparent colour key had JPEG tiles without its transparency;
a rebuild would make them WebP. They look like any opaque image's, so nothing tells runs
apart, and they are kept too.)

Display derivatives need no data migration: their stored name holds the rule they were
written by (blobs/display.py ``DISPLAY_RULE``), so those of the earlier rule are rewritten on
their first request or by the worker.
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
        ("blobs", "0006_internal_storage_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="imageblob",
            name="tiles_format",
            field=models.CharField(
                blank=True, max_length=8,
                help_text="The pyramid's tile format, chosen by its build from the pixels: jpeg "
                          "(all opaque) or webp (some transparent); blank while it has none."),
        ),
        migrations.AlterField(
            model_name="imageblob",
            name="display",
            field=models.FileField(
                blank=True, max_length=255, upload_to="display/",
                help_text="The derivative annotators receive: the pixels as lossless WebP, "
                          "encoded the same way for every image, no metadata "
                          "(blobs/display.py), made by a worker. Its name holds the rule it was "
                          "written by."),
        ),
        migrations.RunPython(forget_pyramids_of_the_old_rule, migrations.RunPython.noop),
    ]
