"""blobs 0005: image rows stored before import applied EXIF orientation get the size of the
picture as shown, read from their files' headers; rows already right, files without a quarter
turn and formats without EXIF are left alone; a missing file is skipped and counted; a second
run changes nothing."""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from PIL import Image, ImageFile

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.services import blob_store_bytes

migration = importlib.import_module("evalhub.blobs.migrations.0005_quarter_turned_sizes")

pytestmark = pytest.mark.django_db

FILE_SIZE = (60, 40)  # every test file's pixels are stored 60 wide, 40 high


def photo(fmt: str, orientation: int | None, colour: str = "teal") -> bytes:
    """A 60 x 40 file in ``fmt`` whose EXIF says ``orientation`` (none: no EXIF)."""
    out = io.BytesIO()
    extra = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif
    Image.new("RGB", FILE_SIZE, colour).save(out, format=fmt, **extra)
    return out.getvalue()


def stored_before_the_fix(data: bytes, name: str) -> ImageBlob:
    """A blob row as an import before EXIF orientation was applied stored it: the file's own
    width and height."""
    blob = blob_store_bytes(data, name=name)
    ImageBlob.objects.filter(pk=blob.pk).update(width=FILE_SIZE[0], height=FILE_SIZE[1])
    return blob


def size(blob: ImageBlob) -> tuple[int, int]:
    blob.refresh_from_db()
    return blob.width, blob.height


def test_quarter_turned_images_get_the_size_as_shown_and_the_others_keep_theirs():
    turned = {
        (fmt, orientation): stored_before_the_fix(photo(fmt, orientation, colour),
                                                   f"{fmt}-{orientation}.img")
        for fmt, orientation, colour in [
            ("JPEG", 6, "teal"), ("JPEG", 8, "navy"), ("JPEG", 5, "olive"), ("JPEG", 7, "plum"),
            ("WEBP", 6, "teal"), ("PNG", 8, "teal"), ("TIFF", 6, "teal")]}
    upright = [stored_before_the_fix(photo("JPEG", orientation, colour), f"up-{orientation}.jpg")
               for orientation, colour in [(1, "gold"), (3, "pink"), (None, "grey")]]
    no_exif_format = stored_before_the_fix(photo("GIF", None), "anim.gif")

    done = migration.correct_sizes(ImageBlob, default_storage, batch=3)

    assert {key: size(blob) for key, blob in turned.items()} == dict.fromkeys(turned, (40, 60))
    assert [size(blob) for blob in upright] == [FILE_SIZE] * 3
    assert size(no_exif_format) == FILE_SIZE
    assert (done.checked, done.corrected, done.missing, done.unreadable) == (10, 7, 0, 0)


def test_rows_already_right_are_left_alone_and_a_second_run_changes_nothing():
    imported_since = blob_store_bytes(photo("JPEG", 6), name="since.jpg")  # stored 40 x 60
    before = stored_before_the_fix(photo("JPEG", 8, "navy"), name="before.jpg")
    assert size(imported_since) == (40, 60)

    first = migration.correct_sizes(ImageBlob, default_storage)
    second = migration.correct_sizes(ImageBlob, default_storage)

    assert size(imported_since) == size(before) == (40, 60)
    assert (first.corrected, second.corrected) == (1, 0)
    assert second.checked == 2


def test_a_missing_file_is_skipped_and_counted():
    gone = stored_before_the_fix(photo("JPEG", 6), name="gone.jpg")
    kept = stored_before_the_fix(photo("JPEG", 6, "navy"), name="kept.jpg")
    default_storage.delete(gone.file.name)

    done = migration.correct_sizes(ImageBlob, default_storage)

    assert (done.missing, done.corrected) == (1, 1)
    assert size(gone) == FILE_SIZE and size(kept) == (40, 60)


def test_only_headers_are_read(monkeypatch):
    # Decoding pixels goes through ImageFile.load; the migration must never need them (a
    # 16K-class photo read in full costs a gigabyte of memory).
    blobs = [stored_before_the_fix(photo(fmt, 6), name=f"header.{fmt}")
             for fmt in ("JPEG", "PNG", "WEBP", "TIFF")]

    def decode(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    done = migration.correct_sizes(ImageBlob, default_storage)

    assert (done.corrected, done.unreadable) == (4, 0)
    assert [size(blob) for blob in blobs] == [(40, 60)] * 4


def test_a_file_that_is_no_image_any_more_is_skipped_and_counted():
    blob = stored_before_the_fix(photo("JPEG", 6), name="garbled.jpg")
    with default_storage.open(blob.file.name, "wb") as fp:
        fp.write(b"not an image")

    done = migration.correct_sizes(ImageBlob, default_storage)

    assert (done.unreadable, done.missing, done.corrected) == (1, 0, 0)
    assert size(blob) == FILE_SIZE


def test_the_migration_step_uses_the_apps_registry_and_reverses_to_nothing():
    blob = stored_before_the_fix(photo("JPEG", 6), name="step.jpg")

    migration.correct_quarter_turned_sizes(apps, schema_editor=None)

    assert size(blob) == (40, 60)
    step = migration.Migration.operations[0]
    assert step.reverse_code is migration.migrations.RunPython.noop
