"""Pyramids are recorded on the blob once complete (blobs/tiles.py); builds claim the blob."""

from django.db import migrations, models

# The tiling threshold when this migration was written (evalhub.blobs.tiles.TILE_MIN_SIDE_PX).
TILE_MIN_SIDE_PX = 4096


def record_existing_pyramids(apps, schema_editor):
    """A pyramid built before this migration is complete when its descriptor exists (it was
    written last); the others are built by a worker when a campaign asks for them."""
    from django.core.files.storage import default_storage
    from django.db.models import Q
    from django.utils import timezone

    ImageBlob = apps.get_model("blobs", "ImageBlob")
    large = Q(width__gt=TILE_MIN_SIDE_PX) | Q(height__gt=TILE_MIN_SIDE_PX)
    now = timezone.now()
    for blob in ImageBlob.objects.filter(large).only("id", "sha256").iterator():
        if default_storage.exists(f"tiles/{blob.sha256}/image.dzi"):
            ImageBlob.objects.filter(pk=blob.pk).update(tiles_built_at=now)


class Migration(migrations.Migration):

    dependencies = [
        ("blobs", "0002_display_derivatives"),
    ]

    operations = [
        migrations.AddField(
            model_name="imageblob",
            name="tiles_built_at",
            field=models.DateTimeField(
                blank=True, null=True,
                help_text="When the Deep Zoom pyramid (blobs/tiles.py) was complete; null: none "
                          "yet. Only images above the tiling threshold get one, built by a "
                          "worker.",
            ),
        ),
        migrations.AddField(
            model_name="imageblob",
            name="tiles_claimed_until",
            field=models.DateTimeField(
                blank=True, null=True,
                help_text="A worker is building the pyramid until then (one build at a time, "
                          "across hosts); a crashed build's claim simply runs out.",
            ),
        ),
        migrations.RunPython(record_existing_pyramids, migrations.RunPython.noop),
    ]
