"""Best-of-K tasks built before such sets were skipped (campaigns.building.kwise,
``KSet.holds_a_file_twice``) may show one file twice: two runs made the very same picture, and
which of the two is better is no judgment. They are retired: their judgments still needed are
lowered to those they have, so they are not served again; votes they already hold stay (a
ranking over the other images is still one), and no task is deleted. A vote on one of them
undone later lowers its judgments needed with its count, so it stays retired
(``serving.voting.vote_undo``, asking ``building.kwise.task_shows_a_file_twice``)."""

from django.db import migrations
from django.db.models import Count, F


def retire_sets_showing_a_file_twice(apps, schema_editor) -> None:
    TaskImage = apps.get_model("campaigns", "TaskImage")
    ComparisonTask = apps.get_model("campaigns", "ComparisonTask")
    twice = (TaskImage.objects.values("task_id", "image__blob_id", "image__video_id")
             .annotate(shown=Count("id")).filter(shown__gt=1)
             .values_list("task_id", flat=True))
    # A subquery, not a list of ids: a large campaign's would pass SQLite's variable limit.
    ComparisonTask.objects.filter(pk__in=twice,
                                  judgments_count__lt=F("judgments_needed")).update(
        judgments_needed=F("judgments_count"))


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0014_lpips_threshold_at_most_one"),
    ]

    operations = [
        migrations.RunPython(retire_sets_showing_a_file_twice, migrations.RunPython.noop,
                             elidable=True),
    ]
