"""The database defaults of four columns, where they are missing.

``runs 0004`` (``GenerationRun.items_done_at_launch``), ``runs 0005`` (``Image.preview_ready``),
``blobs 0007`` (``ImageBlob.tiles_format``) and ``evaluation 0009``
(``MetricJob.images_done_at_resume``) were given their ``db_default`` after they were released:
installations of main from 2026-12-06 06:22 to 07:17 UTC applied the first versions, and their
columns have no default in the database (``integer NOT NULL`` where a fresh database has
``integer DEFAULT 0 NOT NULL``). Without it, a process still on the code before a column
inserts its rows without naming it and fails NOT NULL during the next deploy
(docs/deployment.md, "Upgrading").

Each column's default is read from the database, and set only where it is missing: on
PostgreSQL an ``ALTER COLUMN ... SET DEFAULT`` (a catalogue change), on SQLite a rebuild of the
table. A database that has them (every fresh one) is left as it is. The fields are the
historical ones, with nothing imported from the apps: the result must not change when the
models do later.
"""

from django.db import migrations
from django.db.models import NOT_PROVIDED

#: (app label, model, field) of each column the first versions left without its default.
COLUMNS = (
    ("runs", "GenerationRun", "items_done_at_launch"),
    ("runs", "Image", "preview_ready"),
    ("blobs", "ImageBlob", "tiles_format"),
    ("evaluation", "MetricJob", "images_done_at_resume"),
)


def restore_column_defaults(apps, schema_editor) -> None:
    connection = schema_editor.connection
    for app_label, model_name, field_name in COLUMNS:
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field(field_name)
        with connection.cursor() as cursor:
            described = connection.introspection.get_table_description(
                cursor, model._meta.db_table)
        if next(info.default for info in described if info.name == field.column) is not None:
            continue
        # The same field without its database default, which is what such a column is:
        # altering it into the historical field makes the schema editor add the default.
        name, _path, args, kwargs = field.deconstruct()
        kwargs["db_default"] = NOT_PROVIDED
        without_default = field.__class__(*args, **kwargs)
        without_default.set_attributes_from_name(name)
        without_default.model = model
        schema_editor.alter_field(model, without_default, field)


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0005_image_preview_ready"),
        ("blobs", "0008_forget_old_pyramids"),
        ("evaluation", "0010_video_metric_computed_as"),
    ]

    operations = [
        migrations.RunPython(restore_column_defaults, migrations.RunPython.noop),
    ]
