"""A prompt file's source images come from a folder or zip like a run's images: a zip entry
damaged in the zip is that source's problem, listed with the others, and nothing is stored."""

from __future__ import annotations

import pytest

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.prompts.services import prompt_set_import
from tests.factories import ProjectFactory, png_bytes
from tests.runs.helpers import damage_zip_entry, make_zip

pytestmark = pytest.mark.django_db

PROMPTS = (b'{"text": "make the cat blue", "source_image": "in/cat.png"}\n'
           b'{"text": "make the dog red", "source_image": "in/dog.png"}\n')


@pytest.mark.parametrize(("deflate", "problem"), [
    (False, "in/cat.png: damaged in the zip (bad CRC-32)"),
    (True, "in/cat.png: damaged in the zip (could not be decompressed)"),
])
def test_a_damaged_source_image_rejects_the_prompt_set_listing_it(tmp_path, deflate, problem):
    archive = damage_zip_entry(make_zip(tmp_path / "sources.zip", {
        "in/cat.png": png_bytes(color=(200, 10, 10)), "in/ok.png": png_bytes(),
    }, deflate=deflate), "in/cat.png")
    project = ProjectFactory()

    with pytest.raises(ImportRejected, match="missing or invalid") as refused, \
            open_source(archive, max_total_bytes=10**9) as source:
        prompt_set_import(project=project, name="edits", data=PROMPTS, fmt="jsonl",
                          images=source)

    assert refused.value.details == [problem, "source 'in/dog.png' is not in the folder or zip"]
    assert not project.prompt_sets.exists() and not ImageBlob.objects.exists()
