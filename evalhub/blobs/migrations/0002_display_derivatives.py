"""Display derivatives: an opaque token per blob (backfilled) and the derivative's file."""

from django.db import migrations, models


def fill_tokens(apps, schema_editor):
    # The same keyed hash new rows get in ImageBlob.save() (evalhub/blobs/names.py).
    from evalhub.blobs.names import display_token

    ImageBlob = apps.get_model("blobs", "ImageBlob")
    for blob in ImageBlob.objects.filter(display_token__isnull=True).only("id", "sha256").iterator():
        ImageBlob.objects.filter(pk=blob.pk).update(display_token=display_token(blob.sha256))


class Migration(migrations.Migration):

    dependencies = [
        ("blobs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="imageblob",
            name="display",
            field=models.FileField(
                blank=True, max_length=255, upload_to="display/",
                help_text="The derivative annotators receive: pixels re-encoded, no metadata "
                          "(blobs/display.py), made by a worker.",
            ),
        ),
        migrations.AddField(
            model_name="imageblob",
            name="display_token",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunPython(fill_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="imageblob",
            name="display_token",
            field=models.CharField(
                max_length=64, unique=True, editable=False,
                help_text="Keyed hash of sha256 (blobs/names.py): the opaque name annotators see.",
            ),
        ),
    ]
