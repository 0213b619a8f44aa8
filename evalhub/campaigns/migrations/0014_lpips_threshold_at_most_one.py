"""Campaigns stored with an LPIPS threshold past the largest one (+inf from ``1e400``, or
``1e300``) before it was refused: lowered to it, so the campaigns API can answer them again
(JSON has no infinity) and the number stays one the filter means. Such a threshold skipped every
pair, and so does the largest one: the tasks built are unchanged."""

from django.db import migrations

MAX_LPIPS_DISTANCE = 1.0  # campaigns.models.MAX_LPIPS_DISTANCE when this was written


def lower_thresholds(apps, schema_editor) -> None:
    Campaign = apps.get_model("campaigns", "Campaign")
    Campaign.objects.filter(min_lpips_distance__gt=MAX_LPIPS_DISTANCE).update(
        min_lpips_distance=MAX_LPIPS_DISTANCE)


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0013_judgment_annotator_index_for_prepared_plans"),
    ]

    operations = [
        migrations.RunPython(lower_thresholds, migrations.RunPython.noop, elidable=True),
    ]
