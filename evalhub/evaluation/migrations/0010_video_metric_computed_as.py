"""Video metric values stored before their options were part of their way of computing: the
``video_frames`` (video CLIP score, temporal consistency) or ``flicker_short_side`` (flicker)
they were computed with, read from their job's options (the option's default when the job set
none or is gone, as migration 0007 does for KID), go into their details and ``computed_as``.
Before, a job with other options replaced the default values in place, so each run holds at
most one such value per metric and backbone, and none collide. The rule is copied as it was
when this was written (``evaluation.models.COMPARABILITY_DETAILS`` and ``computed_as``)."""

import json

from django.db import migrations

COMPARABILITY_DETAILS = ("dim", "resize", "subset_size_asked", "estimator", "clip_frames",
                         "video_frames", "flicker_short_side", "rank_deficient")
VIDEO_OPTION = {"video_clip_score": ("video_frames", 16),
                "temporal_consistency": ("video_frames", 16),
                "flicker": ("flicker_short_side", 256)}
BATCH = 1000


def computed_as(details: dict) -> str:
    return ";".join(f"{key}={json.dumps(details[key], sort_keys=True)}"
                    for key in COMPARABILITY_DETAILS if details.get(key) is not None)


def fill_video_options(apps, schema_editor) -> None:
    RunMetric = apps.get_model("evaluation", "RunMetric")
    MetricJob = apps.get_model("evaluation", "MetricJob")
    last = 0
    while True:  # by pk batches, read before written (no cursor open over updated rows)
        rows = list(RunMetric.objects.filter(pk__gt=last, metric__in=list(VIDEO_OPTION))
                    .order_by("pk").only("pk", "metric", "details")[:BATCH])
        if not rows:
            return
        for row in rows:
            details = dict(row.details or {})
            key, default = VIDEO_OPTION[row.metric]
            if key not in details:
                job = MetricJob.objects.filter(pk=details.get("job")).only("options").first()
                details[key] = ((job.options or {}).get(key) if job is not None else None) \
                    or default
                RunMetric.objects.filter(pk=row.pk).update(details=details,
                                                           computed_as=computed_as(details))
        last = rows[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ('evaluation', '0009_images_done_at_resume'),
    ]

    operations = [
        migrations.RunPython(fill_video_options, migrations.RunPython.noop),
    ]
