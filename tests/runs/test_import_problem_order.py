"""A refused run import says its problems in the manifest's line order, counted in words."""

from __future__ import annotations

import pytest

from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import run_images_import
from tests.factories import GenerationRunFactory, PromptFactory, png_bytes
from tests.runs.helpers import make_zip, manifest_csv


@pytest.fixture
def run(db):
    run = GenerationRunFactory(name="r")
    PromptFactory(prompt_set=run.prompt_set, text="a red circle", position=0)
    return run


def _refusal(run, archive, rows) -> ImportRejected:
    with open_source(archive, max_total_bytes=10**9) as source, \
            pytest.raises(ImportRejected) as info:
        run_images_import(run=run, source=source, manifest=manifest_csv(rows))
    return info.value


def test_problems_are_listed_in_manifest_line_order_and_counted(run, tmp_path):
    # The unknown prompt (line 6) is found before any file is read; it is still said last.
    archive = make_zip(tmp_path / "bad.zip", {
        "a.png": png_bytes(), "c.png": png_bytes()[:-30], "notes.txt": b"hello",
        "d.png": png_bytes(color=(1, 2, 3))})
    rows = [("a.png", "a red circle", 0),       # line 2: good
            ("c.png", "a red circle", 1),       # line 3: corrupt PNG
            ("notes.txt", "a red circle", 2),   # line 4: not an image
            ("gone.png", "a red circle", 3),    # line 5: missing
            ("d.png", "a purple cow", 4)]       # line 6: unknown prompt

    refused = _refusal(run, archive, rows)

    assert refused.message == "The import into run 'r' has 4 problems; nothing was imported."
    assert [detail.split(":")[0] for detail in refused.details] == [
        "c.png", "notes.txt", "manifest line 5", "manifest line 6"]
    assert "unknown prompt 'a purple cow'" in refused.details[3]


def test_one_problem_is_said_in_the_singular(run, tmp_path):
    archive = make_zip(tmp_path / "bad.zip", {"a.png": png_bytes()})
    refused = _refusal(run, archive, [("gone.png", "a red circle", 0)])
    assert refused.message == "The import into run 'r' has 1 problem; nothing was imported."
    assert refused.details == ["manifest line 2: file 'gone.png' not found"]


def test_a_problem_of_no_line_comes_after_the_lines(run, tmp_path):
    archive = make_zip(tmp_path / "bad.zip", {"a.png": png_bytes(), "v.mp4": b"x"})
    refused = _refusal(run, archive, [("v.mp4", "a red circle", 0),
                                      ("a.png", "a purple cow", 1),
                                      ("b.png", "a red circle", 2)])
    assert refused.details[-1].startswith("the manifest lists both images and videos")
    lined = [detail for detail in refused.details if detail.startswith("manifest line")]
    assert lined == sorted(lined, key=lambda d: int(d.split()[2].rstrip(":")))
