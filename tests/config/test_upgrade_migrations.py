"""Migrations meet databases that earlier versions of the same migrations left behind.

* ``evaluation 0008`` swaps the run-metric unique key; installations of main from 2026-12-06
  02:55 to 04:50 UTC got that swap from the ``0006`` of then (it did it all in one migration),
  so their schema already holds the new key when ``0008`` comes: it must leave it as it is.
  Going back is refused, with what to do, while a run holds two values of one metric computed
  two ways (the old key cannot hold them).
* ``runs 0006`` gives back the database defaults that the first versions of four migrations
  (main from 2026-12-06 06:22 to 07:17 UTC) did not set, and changes nothing where they are.

The test database is at the latest migration; each test puts its tables in the state it needs
through the schema editor, and the test's transaction (DDL is transactional on PostgreSQL)
takes it all back.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.loader import MigrationLoader
from django.db.models import UniqueConstraint

from evalhub.evaluation.models import RunMetric
from tests.factories import GenerationRunFactory

pytestmark = pytest.mark.django_db

BEFORE_KEY = ("evaluation", "0007_fill_run_metric_computed_as")
KEY_MIGRATION = ("evaluation", "0008_run_metric_unique_computed_as")
OLD_KEY = "unique_run_metric"
NEW_KEY = "unique_run_metric_computed_as"

DEFAULTS_MIGRATION = ("runs", "0006_restore_column_defaults")
#: The columns whose database default the first versions of their migrations did not set.
DEFAULT_COLUMNS = [("runs", "GenerationRun", "items_done_at_launch"),
                   ("runs", "Image", "preview_ready"),
                   ("blobs", "ImageBlob", "tiles_format"),
                   ("evaluation", "MetricJob", "images_done_at_resume")]


def run_metric_constraints() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, RunMetric._meta.db_table))


def key_migration_forwards() -> None:
    loader = MigrationLoader(connection)
    with connection.schema_editor() as editor:
        loader.get_migration(*KEY_MIGRATION).apply(loader.project_state(BEFORE_KEY), editor)


def key_migration_backwards() -> None:
    loader = MigrationLoader(connection)
    with connection.schema_editor() as editor:
        loader.get_migration(*KEY_MIGRATION).unapply(loader.project_state(BEFORE_KEY), editor)


def put_back_the_old_key() -> None:
    """The schema ``0007`` leaves on a database that never ran the 02:55 version of ``0006``."""
    with connection.schema_editor() as editor:
        editor.remove_constraint(RunMetric, UniqueConstraint(
            fields=["run", "metric", "reference_set", "backbone_id", "computed_as"],
            name=NEW_KEY, nulls_distinct=False))
        editor.add_constraint(RunMetric, UniqueConstraint(
            fields=["run", "metric", "reference_set", "backbone_id"], name=OLD_KEY,
            nulls_distinct=False))


def test_the_key_migration_leaves_a_key_swapped_by_the_earlier_0006_as_it_is():
    # The 02:55 version of 0006 removed the old key and added the new one: the test
    # database's schema (the latest) is exactly what it left.
    assert NEW_KEY in run_metric_constraints() and OLD_KEY not in run_metric_constraints()

    key_migration_forwards()

    assert NEW_KEY in run_metric_constraints() and OLD_KEY not in run_metric_constraints()


def test_the_key_migration_swaps_the_keys_of_a_database_at_0007():
    put_back_the_old_key()
    assert OLD_KEY in run_metric_constraints() and NEW_KEY not in run_metric_constraints()

    key_migration_forwards()

    assert NEW_KEY in run_metric_constraints() and OLD_KEY not in run_metric_constraints()


def test_going_back_puts_the_old_key_back_when_no_run_holds_two_ways():
    key_migration_backwards()

    assert OLD_KEY in run_metric_constraints() and NEW_KEY not in run_metric_constraints()


def test_going_back_is_refused_while_a_run_holds_one_metric_computed_two_ways():
    run = GenerationRunFactory()
    for dim, value in ((2048, 31.5), (64, 4.2)):
        RunMetric.objects.create(run=run, metric="fid", value=value, backbone_id="inception",
                                 weights_sha256="0" * 64, calibrated=True, details={"dim": dim})
    with connection.cursor() as cursor:  # their foreign keys checked now, as in a migrate run
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    with pytest.raises(IrreversibleError) as refused:
        key_migration_backwards()

    message = str(refused.value)
    assert f"run {run.pk}" in message and "fid" in message and "delete one of them" in message
    assert NEW_KEY in run_metric_constraints() and OLD_KEY not in run_metric_constraints()
    assert RunMetric.objects.filter(run=run, metric="fid").count() == 2


def column_defaults() -> dict[str, str | None]:
    apps = MigrationLoader(connection).project_state(DEFAULTS_MIGRATION).apps
    defaults = {}
    with connection.cursor() as cursor:
        for app_label, model_name, column in DEFAULT_COLUMNS:
            table = apps.get_model(app_label, model_name)._meta.db_table
            described = connection.introspection.get_table_description(cursor, table)
            defaults[column] = next(info.default for info in described if info.name == column)
    return defaults


def restore_column_defaults(*, collect_sql: bool = False) -> list[str]:
    """Runs the migration's function with its historical models; with ``collect_sql``, only
    gathers the schema changes it would make (and returns them)."""
    module = importlib.import_module(
        f"evalhub.{DEFAULTS_MIGRATION[0]}.migrations.{DEFAULTS_MIGRATION[1]}")
    apps = MigrationLoader(connection).project_state(DEFAULTS_MIGRATION).apps
    with connection.schema_editor(collect_sql=collect_sql) as editor:
        module.restore_column_defaults(apps, editor)
    return editor.collected_sql if collect_sql else []


def test_the_defaults_migration_gives_back_the_defaults_the_first_versions_did_not_set():
    as_released = column_defaults()
    assert all(default is not None for default in as_released.values())
    apps = MigrationLoader(connection).project_state(DEFAULTS_MIGRATION).apps
    with connection.cursor() as cursor:  # the schema the first versions left
        for app_label, model_name, column in DEFAULT_COLUMNS:
            table = connection.ops.quote_name(apps.get_model(app_label, model_name)._meta.db_table)
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")
    assert set(column_defaults().values()) == {None}

    restore_column_defaults()

    assert column_defaults() == as_released
    assert restore_column_defaults(collect_sql=True) == []  # once there, left as they are


def test_the_defaults_migration_changes_nothing_where_the_defaults_are():
    assert all(default is not None for default in column_defaults().values())

    assert restore_column_defaults(collect_sql=True) == []
