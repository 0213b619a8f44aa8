"""The one rule for the work a stored image's blob gets (blobs/after_store.py): a display
derivative for every blob, a preview for every blob (unless the images' own tasks make it), a
Deep Zoom pyramid for the blobs over the tiling threshold. New blobs get all of it; blobs
stored before (a generation run's outputs, queued again when the run closes) get only what
they lack, in the same tasks and batches."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from evalhub.blobs.after_store import blobs_after_store
from evalhub.blobs.display import blob_make_display
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.previews import blob_make_preview
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tiles import blob_build_tiles
from tests.blobs.test_display_uniform import _stored_by_the_old_rule
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

MAKE = "evalhub.blobs.make_displays"
PREVIEWS = "evalhub.blobs.make_previews"
BUILD = "evalhub.blobs.build_tiles"


def _large(shade: int) -> ImageBlob:
    """Over the tiling threshold (4096 px) but cheap: a solid PNG decodes in milliseconds."""
    out = io.BytesIO()
    PILImage.new("RGB", (4200, 300), (shade, 90, 40)).save(out, format="PNG", compress_level=1)
    return blob_store_bytes(out.getvalue(), name=f"large-{shade}.png")


def _small(shade: int) -> ImageBlob:
    return blob_store_bytes(png_bytes(color=(shade, 30, 30)), name=f"small-{shade}.png")


@pytest.fixture
def stored():
    """Blobs of which some already have their derivative, preview or pyramid."""
    blobs = {
        "small, all done": _small(1),
        "small, nothing": _small(2),
        "small, derivative of the old rule": _small(3),
        "large, all done": _large(4),
        "large, no pyramid": _large(5),
        "large, nothing": _large(6),
    }
    for key in ("small, all done", "large, all done", "large, no pyramid"):
        assert blob_make_display(blobs[key])
        assert blob_make_preview(blobs[key])
    assert blob_make_display(blobs["small, derivative of the old rule"])
    _stored_by_the_old_rule(blobs["small, derivative of the old rule"])
    assert blob_make_preview(blobs["small, derivative of the old rule"])
    assert blob_build_tiles(blobs["large, all done"])
    return blobs


def _pks(blobs: dict[str, ImageBlob], *keys: str) -> list[int]:
    return sorted(blobs[key].pk for key in keys)


def _lacking_work(stored: dict[str, ImageBlob]) -> list[tuple[str, list]]:
    """The tasks that the blobs of ``stored`` lacking work are sent, in order."""
    return [
        (MAKE, [_pks(stored, "small, nothing", "small, derivative of the old rule",
                     "large, nothing")]),
        (PREVIEWS, [_pks(stored, "small, nothing", "large, nothing")]),
        (BUILD, [_pks(stored, "large, no pyramid")]),
        (BUILD, [_pks(stored, "large, nothing")]),
    ]


def test_blobs_stored_before_are_queued_exactly_the_work_they_lack(
        stored, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        blobs_after_store(_pks(stored, *stored), lacking_only=True)
    assert sent_tasks == _lacking_work(stored)


def test_without_previews_the_lacking_blobs_get_their_derivatives_and_pyramids_only(
        stored, sent_tasks, django_capture_on_commit_callbacks):
    """A run's outputs: each image's own preview task makes its blob's preview."""
    with django_capture_on_commit_callbacks(execute=True):
        blobs_after_store(_pks(stored, *stored), previews=False, lacking_only=True)
    assert [name for name, _ in sent_tasks] == [MAKE, BUILD, BUILD]


def test_new_blobs_are_queued_all_the_work_whatever_they_have(
        stored, sent_tasks, django_capture_on_commit_callbacks):
    every = _pks(stored, *stored)
    with django_capture_on_commit_callbacks(execute=True):
        blobs_after_store(every)
    assert sent_tasks == [
        (MAKE, [every]),
        (PREVIEWS, [every]),
        (BUILD, [_pks(stored, "large, all done")]),
        (BUILD, [_pks(stored, "large, no pyramid")]),
        (BUILD, [_pks(stored, "large, nothing")]),
    ]


def test_blobs_that_lack_nothing_are_queued_nothing(
        stored, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        blobs_after_store(_pks(stored, "small, all done", "large, all done"), lacking_only=True)
    assert sent_tasks == []


def test_more_blobs_than_a_chunk_are_queued_exactly_the_work_they_lack_in_id_order(
        stored, sent_tasks, django_capture_on_commit_callbacks, monkeypatch):
    """A list of ids is looked up a chunk at a time (an import's 70,000 new blobs would pass
    PostgreSQL's 65,535 bound parameters in one query: core/bounded.py); the chunks' answers
    are one answer, in id order, whatever order the ids were given in."""
    monkeypatch.setattr("evalhub.core.bounded.IN_CHUNK", 2)
    with django_capture_on_commit_callbacks(execute=True):
        blobs_after_store(sorted(_pks(stored, *stored), reverse=True), lacking_only=True)
    assert sent_tasks == _lacking_work(stored)
