"""The annotator index with judge_kind as a column: usable by the prepared (generic) plans of
the rating path, where a partial index on `judge_kind = 'human'` was not."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0012_pair_policy_thompson'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='judgment',
            name='judgment_annotator_idx',
        ),
        migrations.AddIndex(
            model_name='judgment',
            index=models.Index(condition=models.Q(('retracted_at__isnull', True)), fields=['campaign', 'annotator', 'criterion', 'judge_kind'], name='judgment_annotator_idx'),
        ),
    ]
