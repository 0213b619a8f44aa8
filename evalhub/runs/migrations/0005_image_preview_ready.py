"""Each image's own preview mark (runs/previews.py): its blob's preview is shown for it only
once the preview task queued for it has run.

One column, two defaults: the database's (``db_default=True``) fills the images stored before,
whose previews were queued per blob, and the rows that code from before this migration inserts
during a deploy without naming the column (they show their previews as before, instead of
failing NOT NULL); the model's (``default=False``) is what new code inserts, so a new image
starts unready. One operation, so that SQLite rebuilds the images table once."""

from django.db import migrations, models

HELP = ("The preview task queued for this row (runs/previews.py) has run: only then is the "
        "blob's preview shown for it, even if another project's image of the same bytes had "
        "one before (docs/security.md). Rows inserted without it (the code before this column, "
        "raw SQL) count as ready.")


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0004_items_done_at_launch'),
    ]

    operations = [
        migrations.AddField(
            model_name='image',
            name='preview_ready',
            field=models.BooleanField(default=False, db_default=True, help_text=HELP),
        ),
    ]
