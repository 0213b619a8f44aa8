"""Pyramids built before whole levels were stored get them written by a worker
(``evalhub.blobs.write_whole_levels``), assembled from their tiles: queued for every built
pyramid by ``manage.py backfill_whole_levels``, and for one pyramid by the tile view that had
to assemble a level for a request; written once, never again."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from evalhub.blobs.names import project_display_name
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tasks import blobs_write_whole_levels
from evalhub.blobs.tiles import (
    WHOLE_LEVELS_TASK,
    Pyramid,
    assemble_whole_level,
    blob_build_tiles,
    tile_path,
    whole_path,
)
from evalhub.campaigns.page import views as page_views
from evalhub.projects.models import Role
from tests.blobs.test_tiles import H, W, _gradient_png
from tests.factories import ImageFactory, MembershipFactory

LEVELS = Pyramid(W, H).whole_levels()  # [10, 11]: 625 x 375 and 1250 x 750


@pytest.fixture(scope="module")
def large_png() -> bytes:
    return _gradient_png()


def _older_pyramid(data: bytes, name: str):
    """A blob whose pyramid is built but has no whole levels, as built before they existed."""
    blob = blob_store_bytes(data, name=name)
    assert blob_build_tiles(blob)
    for level in LEVELS:
        default_storage.delete(whole_path(blob.sha256, level, "jpeg"))
    return blob


@pytest.fixture
def older(db, large_png):
    return _older_pyramid(large_png, "older.png")


def _stored(blob, level: int) -> bytes | None:
    name = whole_path(blob.sha256, level, "jpeg")
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def test_the_task_writes_the_missing_levels_from_the_tiles_once(older):
    assert blobs_write_whole_levels.apply(args=[[older.pk]]).get() == {
        "written": 2, "stored": 0, "unassembled": 0}

    for level in LEVELS:
        stored = _stored(older, level)
        assert stored == assemble_whole_level(older.sha256, Pyramid(W, H), level, "jpeg")
        assert PILImage.open(io.BytesIO(stored)).size == Pyramid(W, H).level_size(level)
    # Run again (a redelivery, a second backfill): nothing is written twice.
    before = {level: _stored(older, level) for level in LEVELS}
    assert blobs_write_whole_levels([older.pk]) == {"written": 0, "stored": 2, "unassembled": 0}
    assert {level: _stored(older, level) for level in LEVELS} == before


def test_small_images_unbuilt_pyramids_and_missing_tiles_are_skipped(db, older, large_png):
    small = blob_store_bytes(_gradient_png(64, 64), name="small.png")
    unbuilt = blob_store_bytes(_gradient_png(W, H - 2), name="unbuilt.png")
    assert blobs_write_whole_levels([small.pk, unbuilt.pk, 10**9]) == {
        "written": 0, "stored": 0, "unassembled": 0}
    assert _stored(unbuilt, 11) is None

    # A pyramid with a tile lost: that level cannot be assembled and is left to the view's
    # 404; the other is written.
    default_storage.delete(tile_path(older.sha256, 11, 0, 0, "jpeg"))
    assert blobs_write_whole_levels([older.pk]) == {"written": 1, "stored": 0, "unassembled": 1}
    assert _stored(older, 10) is not None and _stored(older, 11) is None


def test_the_command_queues_every_built_pyramid_in_batches(
        db, older, large_png, sent_tasks, django_capture_on_commit_callbacks):
    second = _older_pyramid(_gradient_png(W, H + 2), "second.png")
    third = _older_pyramid(_gradient_png(W, H + 4), "third.png")
    blob_store_bytes(_gradient_png(W, H + 6), name="unbuilt.png")  # no pyramid yet
    blob_store_bytes(_gradient_png(64, 64), name="small.png")  # never one
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction
        call_command("backfill_whole_levels", "--batch", "2", stdout=out)

    assert sent_tasks == [(WHOLE_LEVELS_TASK, [[older.pk, second.pk]]),
                          (WHOLE_LEVELS_TASK, [[third.pk]])]
    assert "3 built pyramids in 2 tasks" in out.getvalue()


def test_the_tile_view_that_assembles_a_level_queues_its_writing_once(
        client, older, sent_tasks, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(page_views, "_WHOLE_STORED", set())
    image = ImageFactory(blob=older)
    member = MembershipFactory(project=image.run.project, role=Role.ANNOTATOR).user
    client.force_login(member)
    name = project_display_name(image.run.project_id, older.pk)
    url = f"/rate/tiles/{name}_files/11/whole.jpeg"

    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(url).status_code == 200  # assembled for this request
        assert client.get(url).status_code == 200
    assert sent_tasks == [(WHOLE_LEVELS_TASK, [[older.pk]])]  # once per blob, not per request
    assert _stored(older, 11) is None  # the web process wrote nothing

    blobs_write_whole_levels(*sent_tasks[0][1])  # the worker
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(url).status_code == 200  # now from storage
    assert _stored(older, 11) is not None
    assert len(sent_tasks) == 1


@pytest.mark.parametrize("command", ["backfill_whole_levels", "rewrite_displays"])
@pytest.mark.parametrize("batch", ["0", "-5"])
def test_both_queueing_commands_refuse_a_batch_below_one(db, command, batch):
    out = io.StringIO()
    with pytest.raises(CommandError, match=rf"--batch must be at least 1 \(got {batch}\)"):
        call_command(command, "--batch", batch, stdout=out)
    assert out.getvalue() == ""  # nothing queued, nothing claimed
