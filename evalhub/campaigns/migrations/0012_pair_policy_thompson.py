"""The ``thompson`` pair policy (ratings.policies.thompson_priorities): a new choice only."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0011_campaign_annotators"),
    ]

    operations = [
        migrations.AlterField(
            model_name="campaign",
            name="pair_policy",
            field=models.CharField(
                choices=[
                    ("balanced", "every pair of runs on every prompt, spread evenly"),
                    ("active", "pairs whose ratings are least certain first"),
                    ("uncertainty", "pairs whose order one vote informs most"),
                    ("top", "find the best run first, then the order"),
                    ("infogain", "greedy information gain: the order and the best run"),
                    ("thompson", "top-two Thompson sampling: the best run only"),
                ],
                default="balanced",
                max_length=20,
            ),
        ),
    ]
