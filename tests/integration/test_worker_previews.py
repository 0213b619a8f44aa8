"""A task runs in a real worker process against PostgreSQL and Redis."""

import pytest
from django.db import connection

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.sources import open_source
from evalhub.runs.importing.services import run_images_import
from evalhub.runs.models import Image
from tests.factories import GenerationRunFactory, PromptFactory
from tests.integration.workers import wait_until
from tests.runs.helpers import distinct_pngs, make_zip, manifest_csv

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_import_queues_its_images_previews_that_a_real_worker_makes(worker, tmp_path):
    assert connection.vendor == "postgresql"
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="a red circle")
    images = distinct_pngs(3)
    archive = make_zip(tmp_path / "r.zip", {
        **{f"{i}.png": data for i, data in enumerate(images)},
        "manifest.csv": manifest_csv([(f"{i}.png", "a red circle", i) for i in range(3)]),
    })
    with open_source(archive, max_total_bytes=10**9) as source:
        run_images_import(run=run, source=source)

    wait_until(
        lambda: not Image.objects.filter(run=run).preview_missing().exists(),
        timeout=60, what="previews made by the worker", on_timeout=worker.log,
    )
    # Each image's own task made its blob's preview: no second task per blob.
    assert "evalhub.runs.make_previews" in worker.log()
    assert "evalhub.blobs.make_previews" not in worker.log()
    assert all(image.preview is not None for image in Image.objects.filter(run=run))
    for blob in ImageBlob.objects.all():
        assert blob.preview.name.endswith(".webp")
        assert blob.preview.size > 0
