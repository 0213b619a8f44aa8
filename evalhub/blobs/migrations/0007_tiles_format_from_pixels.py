"""Tiles are encoded by the pixels' transparency, not by the file's mode (blobs/tiles.py,
"Formats"), and the build records the format on the blob: the new column, and nothing else.

Schema only, so that the table's exclusive lock (taken by ALTER TABLE and held until the
migration's transaction ends) lasts no longer than the ALTER itself: adding a column with a
constant default is a catalogue change on PostgreSQL 11 and later, no rewrite. The data step
(forgetting the pyramids the old rule built: a scan of the whole table) is ``0008``, in its own
transaction, which holds only row locks. The column keeps its default in the database
(``db_default``), so that processes of the previous release, still running during the deploy,
insert blobs without naming it.

Display derivatives need no data migration: their stored name holds the rule they were
written by (blobs/display.py ``DISPLAY_RULE``), so those of the earlier rule are rewritten on
their first request, by the worker, or ahead of time by ``manage.py rewrite_displays``.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blobs", "0006_internal_storage_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="imageblob",
            name="tiles_format",
            field=models.CharField(
                blank=True, default="", db_default="", max_length=8,
                help_text="The pyramid's tile format, chosen by its build from the pixels: jpeg "
                          "(all opaque) or webp (some transparent); blank while it has none (a "
                          "pyramid recorded without it is built again, blobs/tiles.py)."),
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
    ]
