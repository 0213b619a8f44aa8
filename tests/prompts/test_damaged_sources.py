"""A prompt file's source images come from a folder or zip like a run's images: a zip entry
damaged in the zip is that source's problem, listed with the others, and nothing is stored."""

from __future__ import annotations

import pytest

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.prompts.services import prompt_set_import
from tests.factories import ProjectFactory, png_bytes
from tests.runs.helpers import damage_zip_entry, make_zip, make_zip_entries

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


def test_a_zip_with_unsafe_or_repeated_entries_rejects_the_prompt_set_listing_every_problem(
        tmp_path):
    archive = make_zip_entries(tmp_path / "sources.zip", [
        ("../evil.png", png_bytes()), ("in/cat.png", png_bytes()), ("in/cat.png", png_bytes()),
    ])
    project = ProjectFactory()

    with pytest.raises(ImportRejected, match="escape the import folder") as refused, \
            open_source(archive, max_total_bytes=10**9) as source:
        prompt_set_import(project=project, name="edits", data=PROMPTS, fmt="jsonl",
                          images=source)

    assert refused.value.details == [
        "unsafe entry: ../evil.png", "in/cat.png: 2 entries ('in/cat.png', 'in/cat.png')",
        "source 'in/dog.png' is not in the folder or zip"]
    assert not project.prompt_sets.exists() and not ImageBlob.objects.exists()


def test_a_zip_with_problems_is_refused_even_when_no_prompt_names_a_file_in_it(tmp_path):
    archive = make_zip_entries(tmp_path / "sources.zip", [("/abs.png", png_bytes())])
    project = ProjectFactory()

    with pytest.raises(ImportRejected, match="escape the import folder") as refused, \
            open_source(archive, max_total_bytes=10**9) as source:
        prompt_set_import(project=project, name="plain", data=b"a red cube\n", fmt="txt",
                          images=source)

    assert refused.value.details == ["unsafe entry: /abs.png"]
    assert not project.prompt_sets.exists()


def test_a_bad_prompt_file_and_a_zip_with_problems_are_refused_in_one_list(tmp_path):
    archive = make_zip_entries(tmp_path / "sources.zip", [("../evil.png", png_bytes())])
    project = ProjectFactory()

    with pytest.raises(ImportRejected, match="escape the import folder") as refused, \
            open_source(archive, max_total_bytes=10**9) as source:
        prompt_set_import(project=project, name="edits", data=b'{"text": "ok"}\n{oops\n',
                          fmt="jsonl", images=source)

    assert refused.value.details[0] == "unsafe entry: ../evil.png"
    assert refused.value.details[1].startswith("line 2")
    assert not project.prompt_sets.exists()
