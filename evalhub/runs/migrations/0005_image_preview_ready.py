"""Each image's own preview mark (runs/previews.py): its blob's preview is shown for it only
once the preview task queued for it has run. Images stored before had their previews queued
per blob and are marked ready (the column is added with ``True``), new ones start unready."""

from django.db import migrations, models

HELP = ("The preview task queued for this row (runs/previews.py) has run: only then is the "
        "blob's preview shown for it, even if another project's image of the same bytes had "
        "one before (docs/security.md).")


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0004_items_done_at_launch'),
    ]

    operations = [
        migrations.AddField(
            model_name='image',
            name='preview_ready',
            field=models.BooleanField(default=True, help_text=HELP),
        ),
        migrations.AlterField(
            model_name='image',
            name='preview_ready',
            field=models.BooleanField(default=False, help_text=HELP),
        ),
    ]
