# Written by hand on 2026-11-24; emptied when the rating rules became one implementation.
# It changed PL/pgSQL rating functions that no longer exist (migration 0008 drops them where
# an older version installed them). Kept so that the migration graph stays the same.
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0005_fewer_indexes_on_hot_rows"),
    ]

    operations = []
