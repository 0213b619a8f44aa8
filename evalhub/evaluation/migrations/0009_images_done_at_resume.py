"""The images of the shards a metric job had done when it was last resumed, so that its rate
counts only those done since. Jobs stored before count from 0 (their rate as before) until they
are resumed again. The column keeps its default in the database (``db_default``), so that
processes of the previous release, still running during the deploy, insert jobs without
naming it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('evaluation', '0008_run_metric_unique_computed_as'),
    ]

    operations = [
        migrations.AddField(
            model_name='metricjob',
            name='images_done_at_resume',
            field=models.PositiveIntegerField(db_default=0, default=0, help_text='Images of the shards done when the job was last resumed: its images per second count only those done since.'),
        ),
    ]
