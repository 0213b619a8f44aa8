"""Importing a large image yields its tiles from a real worker process, with nobody opening a
page: the tile task is registered in the worker, consumed and run after the import commits."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.sources import open_source
from evalhub.blobs.tiles import TILE_MIN_SIDE_PX, dzi_path, tile_path
from evalhub.runs.importing.services import run_images_import
from tests.factories import GenerationRunFactory, PromptFactory
from tests.integration.workers import wait_until
from tests.runs.helpers import make_zip, manifest_csv

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_import_of_a_large_image_gets_its_tiles_from_a_real_worker(worker, tmp_path):
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="a wide horizon")
    # Over the tiling threshold but cheap: a solid 4200 x 300 PNG is a few kB.
    out = io.BytesIO()
    PILImage.new("RGB", (TILE_MIN_SIDE_PX + 104, 300), (20, 120, 200)).save(out, format="PNG")
    archive = make_zip(tmp_path / "wide.zip", {
        "wide.png": out.getvalue(),
        "manifest.csv": manifest_csv([("wide.png", "a wide horizon", 0)]),
    })
    with open_source(archive, max_total_bytes=10**9) as source:
        run_images_import(run=run, source=source)
    blob = ImageBlob.objects.get()
    assert blob.tiles_built_at is None  # nothing built in this (the importing) process

    wait_until(lambda: ImageBlob.objects.filter(tiles_built_at__isnull=False).exists(),
               timeout=90, what="tiles built by the worker", on_timeout=worker.log)
    log = worker.log()
    assert "evalhub.blobs.build_tiles" in log and "unregistered" not in log.lower()
    assert default_storage.exists(dzi_path(blob.sha256))
    # Level 13 (4200 wide) ends with its ninth column; level 0 is one pixel.
    assert default_storage.exists(tile_path(blob.sha256, 13, 8, 0, "jpeg"))
    assert default_storage.exists(tile_path(blob.sha256, 0, 0, 0, "jpeg"))
