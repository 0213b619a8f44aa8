"""Rewriting the display derivatives ahead of the annotators after an upgrade (docs/deployment.md,
"Upgrading"): ``manage.py rewrite_displays`` queues the derivatives that are missing or of an
earlier rule (blobs/display.py ``DISPLAY_RULE``) in batches, one task per batch, so that no task
runs for hours (past the broker's visibility timeout, it would be delivered again); each task
goes on past a blob it cannot write, saying why, and tries again only the blobs a storage error
stopped."""

from __future__ import annotations

import io
import logging

import pytest
from celery.exceptions import Retry
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image as PILImage

from evalhub.blobs.display import MAKE_BATCH, MAKE_TASK, blob_make_display, display_is_current
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.services import blob_store_bytes
from evalhub.blobs.tasks import blobs_make_displays
from tests.blobs.pictures import encoded, photo
from tests.blobs.test_display_uniform import _stored_by_the_old_rule

pytestmark = pytest.mark.django_db


def _blob(seed: int, size: tuple[int, int] = (64, 48)) -> ImageBlob:
    return blob_store_bytes(encoded(photo(size, seed=seed), "PNG"), name=f"{seed}.png")


def _current(blob: ImageBlob) -> bool:
    return display_is_current(ImageBlob.objects.get(pk=blob.pk))


def test_the_command_queues_the_derivatives_not_current_in_batches(
        sent_tasks, django_capture_on_commit_callbacks):
    current = _blob(1)
    blob_make_display(current)
    old = _blob(2)
    _stored_by_the_old_rule(old)
    missing = [_blob(3), _blob(4)]
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction
        call_command("rewrite_displays", "--batch", "2", stdout=out)

    assert sent_tasks == [(MAKE_TASK, [[old.pk, missing[0].pk]]), (MAKE_TASK, [[missing[1].pk]])]
    assert "3 derivatives in 2 tasks" in out.getvalue()


def test_the_commands_batches_are_the_tasks_default_size(sent_tasks,
                                                         django_capture_on_commit_callbacks):
    blobs = [_blob(seed) for seed in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("rewrite_displays", stdout=io.StringIO())
    assert MAKE_BATCH == 500
    assert sent_tasks == [(MAKE_TASK, [[blob.pk for blob in blobs]])]


def test_a_blob_that_cannot_be_written_does_not_stop_the_others(monkeypatch, caplog):
    """Here the decoder refuses one file as a decompression bomb (not an OSError, so not
    tried again): the task logs why and writes the rest."""
    first, refused, last = _blob(1), _blob(2, (200, 100)), _blob(3)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 5000)  # refused above 10,000 pixels
    with caplog.at_level(logging.WARNING, logger="evalhub.blobs.tasks"):
        assert blobs_make_displays([first.pk, refused.pk, last.pk]) == 2
    assert _current(first) and _current(last) and not _current(refused)
    [record] = [r for r in caplog.records if r.name == "evalhub.blobs.tasks"]
    assert f"blob {refused.pk}" in record.getMessage()
    assert "DecompressionBombError" in record.getMessage()


def test_a_storage_error_is_tried_again_for_that_blob_only(caplog):
    first, unreadable, last = _blob(1), _blob(2), _blob(3)
    default_storage.delete(unreadable.file.name)  # e.g. the object store did not answer
    with pytest.raises(Retry) as retry, caplog.at_level(logging.WARNING):
        blobs_make_displays.apply(args=[[first.pk, unreadable.pk, last.pk]], throw=True)
    assert retry.value.sig.args == ([unreadable.pk],)
    assert _current(first) and _current(last) and not _current(unreadable)
    assert any(f"blob {unreadable.pk}" in r.getMessage() for r in caplog.records)
