# Written by hand on 2026-12-02.
"""Drop the PL/pgSQL rating functions: the ORM services are the one implementation of the
rating rules (evalhub/campaigns/serving/). Databases migrated by an older EvalHub have them;
new ones never had them (migrations 0004, 0006 and 0007 no longer install or change them)."""

from django.db import migrations

FUNCTIONS = [  # callers before callees, with the signatures migration 0004 installed
    "evalhub_rate_vote_v1(text, integer, bigint, uuid, uuid, jsonb, integer, boolean, uuid[],"
    " double precision, double precision, uuid, text, integer)",
    "evalhub_rate_next_v1(text, integer, bigint, uuid[], double precision, double precision,"
    " uuid, text, integer)",
    "evalhub_lease_next_inner_v1(campaigns_campaign, integer, uuid[], double precision,"
    " double precision, uuid, text, integer)",
    "evalhub_take_v1(bigint, integer, boolean, boolean, double precision, uuid, text, integer)",
    "evalhub_lock_candidate_v1(bigint, integer, boolean, boolean, bigint[], double precision,"
    " integer, double precision, double precision)",
    "evalhub_lease_payload_v1(uuid)",
    "evalhub_campaign_json_v1(campaigns_campaign)",
    "evalhub_rater_campaign_v1(text, integer, bigint)",
]


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for signature in FUNCTIONS:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {signature}")


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0007_rater_user_must_be_active"),
    ]

    # Not reversible into the functions: the code that called them is gone too.
    operations = [migrations.RunPython(drop_functions, migrations.RunPython.noop)]
