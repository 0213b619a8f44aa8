"""Imports of more files than one statement can bind: a run or reference set of FID's usual
70,000-100,000 images passed PostgreSQL's 65,535 bound parameters (SQLite's 32,766) with the
hash lookups of every file in the import, and failed before anything was stored.

SCALE, REDUCED: importing 65,536 real files is minutes of work, so these tests shrink the
limit instead. The chunk (core/bounded.py ``IN_CHUNK``) is made small, and every statement is
held to a bound-parameter limit a little over twice the chunk (``LIMIT``), as the
database holds it to 65,535: a lookup of every file in one statement fails here as it did
there. (Bulk inserts bind one array per column on PostgreSQL with Django 5.2, and Django
batches them on SQLite: they pass at any size.) The real size was confirmed once by a probe
against PostgreSQL (the fix's report)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.sources import open_source
from evalhub.prompts.services import prompt_set_import
from evalhub.runs.importing.services import reference_set_import, run_images_import
from evalhub.runs.models import GenerationRun, Image, ReferenceSet
from tests.factories import (
    GenerationRunFactory,
    ImageFactory,
    ProjectFactory,
    PromptFactory,
    png_bytes,
)
from tests.runs.helpers import write_manifest
from tests.statements import statements, widest

pytestmark = pytest.mark.django_db

CHUNK = 50
#: Bound parameters a statement may take here: a chunk of hashes or ids and its other
#: conditions, far under the files imported.
LIMIT = 120
FILES = 250
DISPLAYS = "evalhub.blobs.make_displays"
BLOB_PREVIEWS = "evalhub.blobs.make_previews"
IMAGE_PREVIEWS = "evalhub.runs.make_previews"


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr("evalhub.core.bounded.IN_CHUNK", CHUNK)


def _picture(i: int) -> bytes:
    """Distinct tiny PNGs (a colour each), cheap to decode and store."""
    return png_bytes(color=(i % 256, i // 256, 99), size=(4, 4))


def _folder(tmp_path: Path, count: int) -> tuple[Path, list[bytes]]:
    folder = tmp_path / "files"
    folder.mkdir()
    pictures = [_picture(i) for i in range(count)]
    for i, data in enumerate(pictures):
        (folder / f"{i}.png").write_bytes(data)
    return folder, pictures


def _sent_ids(sent_tasks: list, task: str) -> list[int]:
    return [pk for name, args in sent_tasks if name == task for pk in args[0]]


def _blob_ids() -> set[int]:
    return set(ImageBlob.objects.values_list("pk", flat=True))


def _imported_within_limit(folder: Path, capture_on_commit, do_import: Callable):
    """``do_import(source)`` over ``folder``'s files, what it queues after commit run at once
    (``capture_on_commit``: pytest-django's fixture); checks that no statement bound more than
    :data:`LIMIT` values, and returns what the import returned."""
    with statements() as seen, capture_on_commit(execute=True), \
            open_source(folder, max_total_bytes=10**9) as source:
        result = do_import(source)
    assert widest(seen) <= LIMIT, max(seen, key=lambda entry: len(entry[1]))[0][:200]
    return result


def test_a_run_import_of_more_files_than_a_statement_binds_stores_each_once(
        small_chunks, tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    run: GenerationRun = GenerationRunFactory()
    prompt = PromptFactory(prompt_set=run.prompt_set, text="a red circle")
    folder, pictures = _folder(tmp_path, FILES)
    # 20 files the project holds already (another run's images), 30 only another project.
    other_run = GenerationRunFactory(project=run.project, prompt_set=run.prompt_set)
    for i in range(20):
        ImageFactory(run=other_run, prompt=prompt, seed=i,
                     blob=blob_store_bytes(pictures[i], name=f"{i}.png"))
    for i in range(20, 50):
        blob_store_bytes(pictures[i], name=f"{i}.png")
    # Every file once, and the first 10 again under other seeds: 260 images of 250 files.
    rows = [(f"{i}.png", prompt.text, i) for i in range(FILES)]
    rows += [(f"{i}.png", prompt.text, FILES + i) for i in range(10)]
    write_manifest(folder / "manifest.csv", rows)
    before = _blob_ids()

    report = _imported_within_limit(folder, django_capture_on_commit_callbacks,
                                    lambda source: run_images_import(run=run, source=source))

    assert (report.images_created, report.blobs_created,
            report.duplicates_of_existing_blobs) == (260, 230, 30)
    assert run.images.count() == 260
    assert run.images.values("blob").distinct().count() == FILES
    assert ImageBlob.objects.count() == FILES  # each file stored once, known ones reused
    new_blobs = _blob_ids() - before
    displays = _sent_ids(sent_tasks, DISPLAYS)
    assert sorted(displays) == sorted(new_blobs) and len(new_blobs) == 200
    assert sorted(_sent_ids(sent_tasks, IMAGE_PREVIEWS)) == sorted(
        run.images.values_list("pk", flat=True))


def test_a_reference_set_import_of_more_files_than_a_statement_binds_adds_each_once(
        small_chunks, tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    folder, pictures = _folder(tmp_path, FILES)
    reference_set = ReferenceSet.objects.create(project=GenerationRunFactory().project,
                                                name="coco-val")
    # 60 files the set holds already, 30 more stored for another project only.
    reference_set.images.add(*(blob_store_bytes(pictures[i], name=f"{i}.png")
                               for i in range(60)))
    for i in range(60, 90):
        blob_store_bytes(pictures[i], name=f"{i}.png")
    before = _blob_ids()

    report = _imported_within_limit(
        folder, django_capture_on_commit_callbacks,
        lambda source: reference_set_import(reference_set=reference_set, source=source))

    assert (report.images_created, report.blobs_created,
            report.duplicates_of_existing_blobs) == (FILES - 60, FILES - 60, 60)
    assert reference_set.images.count() == FILES
    assert ImageBlob.objects.count() == FILES
    new_blobs = _blob_ids() - before
    assert len(new_blobs) == FILES - 90
    for task in (DISPLAYS, BLOB_PREVIEWS):
        assert sorted(_sent_ids(sent_tasks, task)) == sorted(new_blobs)
    assert Image.objects.count() == 0


def test_a_prompt_set_of_more_sources_than_a_statement_binds_stores_each_once(
        small_chunks, tmp_path, sent_tasks, django_capture_on_commit_callbacks):
    """An editing prompt set names a source image per prompt: its prompts are inserted, and
    its sources' work looked up, in bounded statements too."""
    count = 150
    folder, _ = _folder(tmp_path, count)
    lines = b"".join(b'{"text": "edit %d", "source_image": "%d.png"}\n' % (i, i)
                     for i in range(count))

    prompt_set = _imported_within_limit(
        folder, django_capture_on_commit_callbacks,
        lambda source: prompt_set_import(project=ProjectFactory(), name="edits", data=lines,
                                         fmt="jsonl", images=source))

    assert prompt_set.prompts.count() == count
    assert prompt_set.prompts.values("source_image").distinct().count() == count
    every = sorted(_blob_ids())
    assert len(every) == count
    for task in (DISPLAYS, BLOB_PREVIEWS):
        assert sorted(_sent_ids(sent_tasks, task)) == every
