"""The annotator index with judge_kind as a column: usable by the prepared (generic) plans of
the rating path, where a partial index on `judge_kind = 'human'` was not.

Built and dropped CONCURRENTLY on PostgreSQL (outside a transaction): a plain DROP INDEX
holds the judgments table's exclusive lock until the new index is built, and every vote
would wait for the build. SQLite (the embedded default) builds it as usual."""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class _Online:
    """CONCURRENTLY on PostgreSQL, the plain operation elsewhere."""

    plain: type

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexOnline(_Online, AddIndexConcurrently):
    plain = migrations.AddIndex


class RemoveIndexOnline(_Online, RemoveIndexConcurrently):
    plain = migrations.RemoveIndex


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('campaigns', '0012_pair_policy_thompson'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexOnline(
            model_name='judgment',
            index=models.Index(condition=models.Q(('retracted_at__isnull', True)), fields=['campaign', 'annotator', 'criterion', 'judge_kind'], name='judgment_rater_idx'),
        ),
        RemoveIndexOnline(
            model_name='judgment',
            name='judgment_annotator_idx',
        ),
    ]
