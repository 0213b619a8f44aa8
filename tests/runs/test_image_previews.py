"""Each image of a run gets its preview from one task of its own (runs/previews.py), never a
second one for its blob; an image whose task was lost is repaired by ``manage.py
make_image_previews``; the one rule for when a preview shows is read alike from a row and in
SQL."""

from __future__ import annotations

from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from evalhub.blobs.previews import blob_make_preview
from evalhub.blobs.sources import open_source
from evalhub.generation.services import generation_run_batch
from evalhub.prompts.services import prompt_set_import
from evalhub.runs import previews
from evalhub.runs.importing.services import reference_set_import, run_images_import
from evalhub.runs.models import Image, ReferenceSet, RunSource, RunStatus
from evalhub.runs.previews import PREVIEWS_TASK
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    ImageFactory,
    ProjectFactory,
    PromptFactory,
    png_bytes,
)
from tests.runs.helpers import distinct_pngs, make_zip, manifest_csv, run_sent

pytestmark = pytest.mark.django_db

BLOB_PREVIEWS_TASK = "evalhub.blobs.make_previews"


def _sent_names(sent_tasks: list) -> Counter:
    return Counter(name for name, _ in sent_tasks)


def _imported_run(tmp_path, files: int = 2):
    run = GenerationRunFactory(source=RunSource.IMPORTED)
    PromptFactory(prompt_set=run.prompt_set, text="a red circle")
    archive = make_zip(tmp_path / "r.zip", {
        **{f"{i}.png": data for i, data in enumerate(distinct_pngs(files))},
        "manifest.csv": manifest_csv([(f"{i}.png", "a red circle", i) for i in range(files)]),
    })
    return run, archive


def _import(run, archive) -> None:
    with open_source(archive, max_total_bytes=10**9) as source:
        run_images_import(run=run, source=source)


# --- one preview task per image ---------------------------------------------------------------


def test_an_imported_image_gets_its_preview_from_one_task_only(
        tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    run, archive = _imported_run(tmp_path, files=2)
    with django_capture_on_commit_callbacks(execute=True):
        _import(run, archive)

    names = _sent_names(sent_tasks)
    assert names[PREVIEWS_TASK] == 1 and names[BLOB_PREVIEWS_TASK] == 0
    assert names["evalhub.blobs.make_displays"] == 1  # the rest of the blobs' work is queued
    run_sent(sent_tasks)
    for image in Image.objects.filter(run=run):
        assert image.preview_ready and image.preview is not None


def test_a_generated_image_gets_its_preview_from_one_task_only(
        sent_tasks, django_capture_on_commit_callbacks):
    run = GenerationRunFactory(checkpoint=CheckpointFactory(generator="shapes"),
                               source=RunSource.GENERATED, seeds=[0, 1], items_total=2,
                               status=RunStatus.QUEUED)
    PromptFactory(prompt_set=run.prompt_set, text="two red circles")
    with django_capture_on_commit_callbacks(execute=True):
        generation_run_batch(run=run, start=0, stop=2)

    names = _sent_names(sent_tasks)
    assert names[PREVIEWS_TASK] == 1 and names[BLOB_PREVIEWS_TASK] == 0
    run_sent(sent_tasks)
    assert all(image.preview is not None for image in run.images.all())


def test_reference_images_and_prompt_sources_keep_their_blob_preview_task(
        tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    """No image of a run holds them, so no image's task would make their previews."""
    reference_set = ReferenceSet.objects.create(project=ProjectFactory(), name="real")
    reference_zip = make_zip(tmp_path / "ref.zip", {"a.png": distinct_pngs(1)[0]})
    sources = make_zip(tmp_path / "sources.zip", {"cat.png": png_bytes(color=(1, 2, 3))})
    with django_capture_on_commit_callbacks(execute=True):
        with open_source(reference_zip, max_total_bytes=10**9) as source:
            reference_set_import(reference_set=reference_set, source=source)
        with open_source(sources, max_total_bytes=10**9) as source:
            prompt_set_import(project=ProjectFactory(), name="edits", fmt="jsonl", images=source,
                              data=b'{"text": "make it blue", "source_image": "cat.png"}\n')

    assert _sent_names(sent_tasks)[BLOB_PREVIEWS_TASK] == 2
    assert _sent_names(sent_tasks)[PREVIEWS_TASK] == 0


def test_images_inserted_without_returned_ids_still_get_their_preview_task(
        tmp_path, sent_tasks, django_capture_on_commit_callbacks, monkeypatch):
    """A database that does not return the ids of a bulk insert (SQLite before 3.35) leaves
    them unset on the rows: they are read back, not sent as nulls."""
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    run, archive = _imported_run(tmp_path, files=3)
    ImageFactory(run=run, prompt=run.prompt_set.prompts.get(), seed=99)  # not part of it
    with django_capture_on_commit_callbacks(execute=True):
        _import(run, archive)

    (ids,) = [args[0] for name, args in sent_tasks if name == PREVIEWS_TASK]
    assert sorted(ids) == sorted(Image.objects.filter(run=run).exclude(seed=99)
                                 .values_list("pk", flat=True))


# --- the repair -------------------------------------------------------------------------------


@pytest.fixture
def lost(tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    """Two projects' imported runs whose images' preview tasks were lost (queued, never run),
    and one image of the first project whose preview shows."""
    runs = []
    for _ in range(2):
        run, archive = _imported_run(tmp_path, files=2)
        with django_capture_on_commit_callbacks(execute=True):
            _import(run, archive)
        runs.append(run)
    sent_tasks.clear()  # lost
    shown = ImageFactory(run=runs[0], prompt=runs[0].prompt_set.prompts.get(), seed=50)
    previews.images_make_previews([shown.pk])
    return runs, shown


def _repair(*args: str) -> str:
    out = StringIO()
    call_command("make_image_previews", *args, stdout=out)
    return out.getvalue()


def _without_preview(run) -> int:
    return sum(image.preview is None for image in Image.objects.filter(run=run))


def test_the_repair_queues_the_images_that_show_no_preview_and_they_show_it_once_run(
        lost, sent_tasks, django_capture_on_commit_callbacks):
    (first, second), shown = lost
    assert (_without_preview(first), _without_preview(second)) == (2, 2)

    with django_capture_on_commit_callbacks(execute=True):
        out = _repair()

    assert f"queued {PREVIEWS_TASK} for 4 images without a preview in 1 tasks" in out
    assert [name for name, _ in sent_tasks] == [PREVIEWS_TASK]
    assert shown.pk not in sent_tasks[0][1][0]
    run_sent(sent_tasks)
    assert (_without_preview(first), _without_preview(second)) == (0, 0)

    with django_capture_on_commit_callbacks(execute=True):
        again = _repair()
    assert "for 0 images without a preview in 0 tasks" in again and sent_tasks == []


def test_the_repair_of_one_project_leaves_the_others_alone(
        lost, sent_tasks, django_capture_on_commit_callbacks):
    (first, second), _ = lost
    with django_capture_on_commit_callbacks(execute=True):
        _repair("--project", second.project.slug)
    run_sent(sent_tasks)
    assert (_without_preview(first), _without_preview(second)) == (2, 0)


def test_the_repair_sends_at_most_a_task_per_batch_of_images(
        lost, sent_tasks, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(previews, "IMAGES_PER_TASK", 3)
    with django_capture_on_commit_callbacks(execute=True):
        out = _repair()
    assert "for 4 images without a preview in 2 tasks" in out
    assert [len(args[0]) for _, args in sent_tasks] == [3, 1]


def test_the_repair_also_makes_the_lost_preview_of_an_image_marked_ready_before(
        sent_tasks, django_capture_on_commit_callbacks):
    """An image stored before images had their own task is ready; its blob's preview task may
    have been lost all the same."""
    image = ImageFactory()
    Image.objects.filter(pk=image.pk).update(preview_ready=True)
    assert not image.blob.preview
    with django_capture_on_commit_callbacks(execute=True):
        _repair()
    run_sent(sent_tasks)
    image.refresh_from_db()
    assert image.preview is not None


def test_the_repair_names_an_unknown_project():
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        _repair("--project", "nope")


# --- one rule for when a preview shows ----------------------------------------------------------


@pytest.mark.parametrize("ready", [True, False])
def test_the_row_and_the_query_agree_on_whether_an_image_shows_its_preview(ready):
    image = ImageFactory(preview_ready=ready)
    assert blob_make_preview(image.blob)
    image.refresh_from_db()

    in_python = image.preview is not None
    in_sql = Image.objects.preview_shown().filter(pk=image.pk).exists()
    assert in_python == in_sql == ready
