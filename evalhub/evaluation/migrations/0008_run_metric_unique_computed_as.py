from django.db import migrations, models


class Migration(migrations.Migration):
    """A value computed another way is kept beside the one before (the unique key names the
    way). Going back is refused once a run holds two values of one metric computed two
    ways, as the old key cannot hold them: delete one of them first."""

    dependencies = [
        ('evaluation', '0007_fill_run_metric_computed_as'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='runmetric',
            name='unique_run_metric',
        ),
        migrations.AddConstraint(
            model_name='runmetric',
            constraint=models.UniqueConstraint(fields=('run', 'metric', 'reference_set', 'backbone_id', 'computed_as'), name='unique_run_metric_computed_as', nulls_distinct=False),
        ),
    ]
