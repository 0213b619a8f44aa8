# Written by hand on 2026-11-24.

from pathlib import Path

from django.db import migrations

RATING_SQL = Path(__file__).resolve().parent.parent / "sql" / "rating_v1.sql"

# evalhub_rater_campaign_v1 checked the account behind an API token, but took a user id as
# given: the session middleware had already refused inactive users. Rating tokens
# (evalhub/campaigns/rating_tokens.py) carry a user id that only their signature vouches for,
# so the account is now checked for every rater, in the same call. Same signature, so the
# rating functions that call it need no change.
ACTIVE_USERS_ONLY = """
CREATE OR REPLACE FUNCTION evalhub_rater_campaign_v1(
    p_token text, p_user integer, p_campaign bigint,
    OUT o_user integer, OUT o_campaign campaigns_campaign, OUT o_refusal text
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_token IS NOT NULL THEN
        SELECT t.user_id INTO o_user FROM authtoken_token t
        JOIN auth_user u ON u.id = t.user_id AND u.is_active
        WHERE t.key = p_token;
    ELSE
        SELECT u.id INTO o_user FROM auth_user u WHERE u.id = p_user AND u.is_active;
    END IF;
    IF o_user IS NULL THEN
        o_refusal := 'bad_token';
        RETURN;
    END IF;
    SELECT c.* INTO o_campaign FROM campaigns_campaign c
    WHERE c.id = p_campaign AND EXISTS (
        SELECT 1 FROM projects_membership m
        WHERE m.project_id = c.project_id AND m.user_id = o_user);
    IF o_campaign.id IS NULL THEN
        o_refusal := 'no_campaign';
    END IF;
END
$$;
"""


def _as_0004_installed() -> str:
    """The function as migration 0004 installed it, from the file it installs forever."""
    sql = RATING_SQL.read_text()
    start = sql.index("CREATE OR REPLACE FUNCTION evalhub_rater_campaign_v1(")
    return sql[start:sql.index("$$;", start) + len("$$;")]


def _execute(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)  # no parameters: "%" must not be read as a placeholder


def check_every_user_is_active(apps, schema_editor):
    _execute(schema_editor, ACTIVE_USERS_ONLY)


def take_user_ids_as_given(apps, schema_editor):
    _execute(schema_editor, _as_0004_installed())


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0006_rating_functions_without_jit"),
    ]

    operations = [
        migrations.RunPython(check_every_user_is_active, take_user_ids_as_given),
    ]
