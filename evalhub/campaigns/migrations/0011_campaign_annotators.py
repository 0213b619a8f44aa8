from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("campaigns", "0010_best_of_k_tasks"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="annotators",
            field=models.ManyToManyField(
                blank=True, help_text="Members of the project who may rate it; empty: every member.",
                related_name="assigned_campaigns", to=settings.AUTH_USER_MODEL),
        ),
    ]
