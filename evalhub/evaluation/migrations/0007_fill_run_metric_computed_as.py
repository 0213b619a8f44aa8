"""Values stored before ``RunMetric.computed_as``: their way of computing, read from their
details (a KID's subset size asked from its job's options, stored only since). The rule is
copied as it was when this was written (``evaluation.models.COMPARABILITY_DETAILS`` and
``computed_as``): a migration's result must not change when the model's rule does later."""

import json

from django.db import migrations

COMPARABILITY_DETAILS = ("dim", "resize", "subset_size_asked", "estimator", "clip_frames",
                         "rank_deficient")
BATCH = 1000


def computed_as(details: dict) -> str:
    return ";".join(f"{key}={json.dumps(details[key], sort_keys=True)}"
                    for key in COMPARABILITY_DETAILS if details.get(key) is not None)


def fill_computed_as(apps, schema_editor) -> None:
    RunMetric = apps.get_model("evaluation", "RunMetric")
    MetricJob = apps.get_model("evaluation", "MetricJob")
    last = 0
    while True:  # by pk batches, read before written (no cursor open over updated rows)
        rows = list(RunMetric.objects.filter(pk__gt=last).order_by("pk")
                    .only("pk", "metric", "details")[:BATCH])
        if not rows:
            return
        for row in rows:
            details = dict(row.details or {})
            if row.metric == "kid" and "subset_size_asked" not in details:
                job = MetricJob.objects.filter(pk=details.get("job")).only("options").first()
                asked = (job.options or {}).get("kid_subset_size") if job is not None else None
                details["subset_size_asked"] = asked or 1000  # the option's default
            way = computed_as(details)
            if way or details != row.details:
                RunMetric.objects.filter(pk=row.pk).update(details=details, computed_as=way)
        last = rows[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ('evaluation', '0006_run_metric_computed_as'),
    ]

    operations = [
        migrations.RunPython(fill_computed_as, migrations.RunPython.noop),
    ]
