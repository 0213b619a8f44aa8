"""During a deploy, processes still on the code before runs 0004 and 0005 insert runs and images
without the new columns: the database's defaults fill them (``db_default``) instead of failing
NOT NULL. Rows inserted that way read as they did before (an image's preview shows, a run's
rate counts from 0); new code's rows say what it means (a new image waits for its preview
task)."""

from __future__ import annotations

import pytest
from django.db import connection, models

from evalhub.runs.models import GenerationRun, Image
from tests.factories import GenerationRunFactory, ImageFactory

pytestmark = pytest.mark.django_db


def _insert_as_old_code(model: type[models.Model], new_column: str, copy_of: models.Model,
                        **changed: object) -> int:
    """Insert a copy of ``copy_of`` by raw SQL naming every column but the id and
    ``new_column``, as code that predates the column does; returns the new row's id."""
    fields = [f for f in model._meta.concrete_fields
              if not f.primary_key and f.column != new_column]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    values = [f.get_db_prep_save(changed.get(f.name, getattr(copy_of, f.attname)), connection)
              for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
                       f"VALUES ({', '.join(['%s'] * len(fields))})", values)
    return model.objects.get(**changed).pk


def test_a_new_image_stored_by_the_orm_waits_for_its_preview_task():
    assert ImageFactory().preview_ready is False
    assert Image.objects.get().preview_ready is False


def test_an_image_inserted_without_the_column_shows_its_preview_as_before():
    template = ImageFactory(seed=1)
    pk = _insert_as_old_code(Image, "preview_ready", template, seed=2)
    assert Image.objects.get(pk=pk).preview_ready is True


def test_a_run_inserted_without_the_column_counts_its_rate_from_zero():
    template = GenerationRunFactory(items_done=7)
    pk = _insert_as_old_code(GenerationRun, "items_done_at_launch", template, name="old-code")
    assert GenerationRun.objects.get(pk=pk).items_done_at_launch == 0
    assert GenerationRunFactory().items_done_at_launch == 0
