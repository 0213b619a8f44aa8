"""A metric job whose shards (or finalize step) the task queue did not take is marked by its own
column, ``not_queued``, instead of by how its ``error`` begins: behaviour keyed on a message's
wording changes when the wording does, and cannot be filtered on. Unfinished jobs that an
earlier release marked the old way (an ``error`` beginning with :data:`OLD_MARK`) get the
column set, so a create of the same job still queues their shards after the upgrade. The
column keeps its default in the database (``db_default``), so that processes of the previous
release, still running during the deploy, insert jobs without naming it. Going back drops the
column; the ``error`` texts, still there, mark those jobs as before."""

from django.db import migrations, models

#: How ``error`` began on a job not queued, copied as it was when this was written
#: (``evaluation.services._not_queued``).
OLD_MARK = "Its shards could not be queued"
UNFINISHED = ("queued", "running", "finalizing")


def mark_not_queued(apps, schema_editor) -> None:
    MetricJob = apps.get_model("evaluation", "MetricJob")
    MetricJob.objects.filter(status__in=UNFINISHED, error__startswith=OLD_MARK).update(
        not_queued=True)


class Migration(migrations.Migration):

    dependencies = [
        ('evaluation', '0010_video_metric_computed_as'),
    ]

    operations = [
        migrations.AddField(
            model_name='metricjob',
            name='not_queued',
            field=models.BooleanField(
                db_default=False, default=False,
                help_text="True while the job's shards (or finalize step) did not reach the "
                          "task queue (the broker was down): nothing computes it until a "
                          "resume, or a create of the same job, queues them; its error says "
                          "how."),
        ),
        migrations.RunPython(mark_not_queued, migrations.RunPython.noop),
    ]
