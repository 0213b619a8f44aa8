# Written by hand on 2026-11-24.

from django.db import migrations

# The two entry points; the setting holds for every function they call.
ENTRY_POINTS = [
    "evalhub_rate_vote_v1(text, integer, bigint, uuid, uuid, jsonb, integer, boolean, uuid[],"
    " double precision, double precision, uuid, text, integer)",
    "evalhub_rate_next_v1(text, integer, bigint, uuid[], double precision, double precision,"
    " uuid, text, integer)",
]


def jit_off(apps, schema_editor):
    """No JIT compilation inside the rating functions.

    The candidate query reads a few rows (LIMIT 1 over the serving index), but the planner
    costs it as a walk of the whole index, past PostgreSQL's jit_above_cost. JIT then compiled
    the query on every call (20-30 ms of CPU instead of well under 1 ms), which stalled all
    votes for a second or more whenever serving fell back to the whole order.
    """
    if schema_editor.connection.vendor != "postgresql":
        return
    for signature in ENTRY_POINTS:
        schema_editor.execute(f"ALTER FUNCTION {signature} SET jit = off")


def jit_default(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for signature in ENTRY_POINTS:
        schema_editor.execute(f"ALTER FUNCTION {signature} RESET jit")


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0005_fewer_indexes_on_hot_rows"),
    ]

    operations = [
        migrations.RunPython(jit_off, jit_default),
    ]
