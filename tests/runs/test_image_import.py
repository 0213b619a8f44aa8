"""Importing a run's images: all or nothing, every kind of bad input named, duplicates once."""

import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import run_images_import
from evalhub.runs.models import GenerationRun, Image, RunStatus
from tests.factories import GenerationRunFactory, PromptFactory, png_bytes
from tests.runs.helpers import (
    distinct_pngs,
    make_zip,
    make_zip_entries,
    manifest_csv,
    write_manifest,
)

LIMIT = 10**9


@pytest.fixture
def run(db) -> GenerationRun:
    run = GenerationRunFactory()
    for position, text in enumerate(["a red circle", "two blue squares"]):
        PromptFactory(prompt_set=run.prompt_set, text=text, position=position)
    return run


def _import(run, source_path: Path, manifest: bytes | None = None, **kwargs):
    with open_source(source_path, max_total_bytes=LIMIT) as source:
        return run_images_import(run=run, source=source, manifest=manifest, **kwargs)


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_folder_with_its_manifest_becomes_the_runs_images(run, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    a, b, c = distinct_pngs(3)
    (folder / "a.png").write_bytes(a)
    (folder / "sub").mkdir()
    (folder / "sub" / "b.png").write_bytes(b)
    (folder / "c.png").write_bytes(c)
    write_manifest(folder / "manifest.csv", [
        ("a.png", "a red circle", 0),
        ("sub/b.png", "a red circle", 1),
        ("c.png", "two blue squares", 0),
    ])

    report = _import(run, folder)

    assert report.images_created == 3
    assert {(i.prompt.text, i.seed) for i in run.images.all()} == {
        ("a red circle", 0), ("a red circle", 1), ("two blue squares", 0)
    }
    run.refresh_from_db()
    assert (run.status, run.items_done) == (RunStatus.COMPLETED, 3)
    image = run.images.get(seed=1)
    assert default_storage.open(image.blob.file.name).read() == b


def test_a_zip_with_a_jsonl_manifest_given_separately(run, tmp_path):
    a, b = distinct_pngs(2)
    archive = make_zip(tmp_path / "run.zip", {"x/a.png": a, "x/b.png": b})
    manifest = (
        b'{"file": "x/a.png", "prompt": "a red circle", "seed": 7, "sampler": "ddim"}\n'
        b'{"file": "x/b.png", "prompt_id": %d, "seed": 7}\n' % run.prompt_set.prompts.last().id
    )
    report = _import(run, archive, manifest=manifest, manifest_name="m.jsonl")
    assert report.images_created == 2
    assert run.images.get(prompt__text="a red circle").metadata == {
        "source_file": "x/a.png", "sampler": "ddim"
    }


def test_identical_images_are_stored_once_across_rows_and_runs(run, tmp_path):
    same = png_bytes(color=(9, 9, 9))
    archive = make_zip(tmp_path / "dup.zip", {
        "a.png": same, "b.png": same,
        "manifest.csv": manifest_csv([("a.png", "a red circle", 0), ("b.png", "a red circle", 1)]),
    })
    first = _import(run, archive)
    other_run = GenerationRunFactory(project=run.project, prompt_set=run.prompt_set)
    second = _import(other_run, archive)

    assert (first.images_created, first.blobs_created) == (2, 1)
    assert (second.images_created, second.blobs_created) == (2, 0)
    assert ImageBlob.objects.count() == 1
    assert Image.objects.filter(blob__sha256=ImageBlob.objects.get().sha256).count() == 4


def _assert_nothing_imported(run, media_root: Path) -> None:
    assert run.images.count() == 0
    assert ImageBlob.objects.count() == 0
    assert _stored_files(media_root) == []


@pytest.mark.parametrize(
    ("files", "rows", "expected"),
    [
        ({"a.png": b""}, [("a.png", "a red circle", 0)], "a.png: file is empty"),
        ({"a.png": b"plain text"}, [("a.png", "a red circle", 0)], "a.png: not an image"),
        ({"a.png": png_bytes()[:-30]}, [("a.png", "a red circle", 0)], "truncated"),
        ({}, [("gone.png", "a red circle", 0)], "file 'gone.png' not found"),
        ({"a.png": png_bytes()}, [("a.png", "a purple cow", 0)], "unknown prompt 'a purple cow'"),
        ({"a.png": png_bytes()}, [("a.png", "a red circle", "x")], "seed 'x' is not an integer"),
        ({"a.png": png_bytes()}, [("a.png", "a red circle", 0), ("a.png", "a red circle", 0)],
         "repeat line 5"),
    ],
)
def test_one_bad_row_rejects_the_whole_import(run, tmp_path, settings, files, rows, expected):
    good = {f"good{i}.png": data for i, data in enumerate(distinct_pngs(3))}
    good_rows = [(name, "two blue squares", i) for i, name in enumerate(good)]
    archive = make_zip(tmp_path / "bad.zip", {**good, **files})

    with pytest.raises(ImportRejected) as info:
        _import(run, archive, manifest=manifest_csv(good_rows + rows))

    assert any(expected in detail for detail in info.value.details), info.value.details
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))


def test_every_files_problem_is_listed_whatever_else_is_wrong_with_its_line(run, tmp_path,
                                                                            settings):
    # Fixing the prompts or the seeds must not reveal a second round of bad files: the file of
    # a line with an unknown prompt, or with a bad seed, is checked too.
    good = png_bytes()
    archive = make_zip(tmp_path / "bad.zip", {
        "a.png": good, "b.png": b"plain text", "c.png": png_bytes()[:-30],
        "e.png": b"not a png either", "f.png": b"nor this"})
    rows = [("a.png", "a red circle", 0), ("b.png", "a red circle", 1),
            ("c.png", "a red circle", 2), ("gone.png", "a red circle", 3),
            ("e.png", "a red circle", "x"), ("f.png", "a purple cow", 5),
            ("f.png", "two blue squares", 6)]  # the same bad file again: said once

    with pytest.raises(ImportRejected) as info:
        _import(run, archive, manifest=manifest_csv(rows))

    details = info.value.details
    expected = ["b.png: not an image", "c.png", "file 'gone.png' not found",
                "seed 'x' is not an integer", "e.png: not an image",
                "unknown prompt 'a purple cow'", "f.png: not an image"]
    for problem in expected:
        assert sum(problem in detail for detail in details) == 1, (problem, details)
    assert len(details) == len(expected), details
    assert "has 7 problems;" in info.value.message
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))


@pytest.mark.parametrize(("manifest", "name", "expected"), [
    (b"file,prompt,seed\ngood.png,no such prompt,abc\n", "manifest.csv",
     ["manifest line 2: seed 'abc' is not an integer",
      "manifest line 2: unknown prompt 'no such prompt'"]),
    (b'{"prompt": "nope", "seed": -1}\n', "manifest.jsonl",
     ["manifest line 1: no file; Seeds are 0 to", "manifest line 1: unknown prompt 'nope'"]),
    (b"file,prompt_id,seed\ngood.png,999999999,\n", "manifest.csv",
     ["manifest line 2: no seed", "manifest line 2: unknown prompt prompt_id 999999999"]),
    # What a bad line names and could not be read is not looked up: said once, by the line.
    (b"file,prompt_id,prompt,seed\ngood.png,x,no such prompt,1\n", "manifest.csv",
     ["manifest line 2: prompt_id 'x' is not an integer"]),
])
def test_every_problem_of_a_bad_line_is_listed_its_unknown_prompt_too(
        run, tmp_path, settings, manifest, name, expected):
    # Fixing the seed must not reveal a second round: the prompt of a bad line is looked up.
    archive = make_zip(tmp_path / "bad.zip", {"good.png": png_bytes()})
    with pytest.raises(ImportRejected) as info:
        _import(run, archive, manifest=manifest, manifest_name=name)
    details = info.value.details
    assert len(details) == len(expected), details
    for problem in expected:
        assert sum(detail.startswith(problem) for detail in details) == 1, (problem, details)
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))


def test_a_row_kept_as_it_is_is_not_read_again(run, tmp_path):
    pngs = distinct_pngs(2)
    archive = make_zip(tmp_path / "first.zip", {"a.png": pngs[0]})
    _import(run, archive, manifest=manifest_csv([("a.png", "a red circle", 0)]))
    # The second import lists the stored row again with a file gone bad: skipped, not read.
    again = make_zip(tmp_path / "again.zip", {"a.png": b"broken now", "b.png": pngs[1]})
    report = _import(run, again, manifest=manifest_csv([("a.png", "a red circle", 0),
                                                        ("b.png", "a red circle", 1)]),
                     skip_existing=True)
    assert report.images_created == 1


def test_zip_entries_escaping_the_folder_reject_the_import(run, tmp_path, settings):
    for name in ["../evil.png", "/etc/evil.png", "a/../../evil.png", "C:/evil.png"]:
        archive = make_zip(tmp_path / "escape.zip", {"ok.png": png_bytes(), name: png_bytes()})
        with pytest.raises(ImportRejected, match="escape the import folder") as info:
            _import(run, archive, manifest=manifest_csv([("ok.png", "a red circle", 0)]))
        assert any(name in detail for detail in info.value.details)
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))
    assert not (tmp_path.parent / "evil.png").exists()


def test_a_symlink_inside_a_zip_rejects_the_import(run, tmp_path):
    archive = make_zip(tmp_path / "link.zip", {"ok.png": png_bytes()},
                       symlinks={"link.png": "/etc/passwd"})
    with pytest.raises(ImportRejected, match="escape the import folder"):
        _import(run, archive, manifest=manifest_csv([("ok.png", "a red circle", 0)]))


def test_a_symlink_in_a_folder_pointing_outside_rejects_the_import(run, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (tmp_path / "secret.png").write_bytes(png_bytes())
    (folder / "a.png").symlink_to(tmp_path / "secret.png")
    rows = [("a.png", "a red circle", 0), ("gone.png", "a red circle", 1)]
    with pytest.raises(ImportRejected, match="outside the import folder") as info:
        _import(run, folder, manifest=manifest_csv(rows))
    # Listed with the manifest's problems; the link is not also "not found".
    unsafe, missing = info.value.details
    assert unsafe.startswith("unsafe entry: a.png (symbolic link pointing outside")
    assert missing == "manifest line 3: file 'gone.png' not found"


def test_duplicate_zip_entries_are_listed_with_every_other_problem(run, tmp_path, settings):
    # Fixing the zip must not reveal a second round: the manifest's lines and files are
    # checked too. A line naming the duplicated file is not said to name a missing one.
    archive = make_zip_entries(tmp_path / "dup.zip", [
        ("dup.png", png_bytes(color=(1, 2, 3))), ("dup.png", png_bytes(color=(4, 5, 6))),
        ("bad.png", b"plain text"), ("good.png", png_bytes())])
    rows = [("dup.png", "a red circle", 0), ("missing.png", "a red circle", 1),
            ("bad.png", "a red circle", 2), ("good.png", "a red circle", 3)]

    with pytest.raises(ImportRejected) as info:
        _import(run, archive, manifest=manifest_csv(rows))

    assert info.value.message == (
        "The zip has several entries for the same file, so which one is meant is not clear. "
        f"The import into run {run.name!r} has 3 problems; nothing was imported.")
    dup, missing, bad = info.value.details
    assert dup == "dup.png: 2 entries ('dup.png', 'dup.png')"
    assert missing == "manifest line 3: file 'missing.png' not found"
    assert bad.startswith("bad.png: not an image")
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))


def test_unsafe_entries_are_listed_with_every_other_problem_and_never_opened(
        run, tmp_path, settings, monkeypatch):
    archive = make_zip_entries(tmp_path / "evil.zip", [
        ("../evil.png", png_bytes()), ("/abs.png", png_bytes()),
        ("dup.png", png_bytes(color=(1, 2, 3))), ("dup.png", png_bytes(color=(4, 5, 6))),
        ("bad.png", b"plain text"), ("good.png", png_bytes())])
    rows = [("dup.png", "a red circle", 0), ("missing.png", "a red circle", 1),
            ("bad.png", "a red circle", 2), ("good.png", "a red circle", 3)]
    opened = []
    open_entry = zipfile.ZipFile.open

    def spy(self, entry, *args, **kwargs):
        opened.append(getattr(entry, "filename", entry))
        return open_entry(self, entry, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)

    with pytest.raises(ImportRejected) as info:
        _import(run, archive, manifest=manifest_csv(rows))

    assert info.value.message.startswith(
        "The zip has entries that would escape the import folder. The zip has several entries "
        "for the same file")
    assert "has 5 problems; nothing was imported." in info.value.message
    assert info.value.details[:4] == [
        "unsafe entry: ../evil.png", "unsafe entry: /abs.png",
        "dup.png: 2 entries ('dup.png', 'dup.png')",
        "manifest line 3: file 'missing.png' not found"]
    assert info.value.details[4].startswith("bad.png: not an image")
    assert sorted(opened) == ["bad.png", "good.png"]  # the others are never read
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))
    assert not (tmp_path.parent / "evil.png").exists()


def test_a_zip_whose_manifest_cannot_be_read_still_lists_its_other_problems(run, tmp_path):
    manifest = manifest_csv([("a.png", "a red circle", 0)])
    archive = make_zip_entries(tmp_path / "two.zip", [
        ("manifest.csv", manifest), ("manifest.csv", manifest), ("../evil.png", png_bytes()),
        ("a.png", png_bytes())])
    with pytest.raises(ImportRejected, match="The manifest cannot be read") as info:
        _import(run, archive)
    assert info.value.details == ["unsafe entry: ../evil.png",
                                  "manifest.csv: 2 entries ('manifest.csv', 'manifest.csv')"]


def test_a_zip_bomb_is_refused_before_inflating(run, tmp_path, settings):
    # An entry larger than any file an import takes (the image and video byte limits).
    settings.EVALHUB_MAX_IMAGE_BYTES = settings.EVALHUB_MAX_VIDEO_BYTES = 10_000_000
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("huge.png", b"\x00" * 50_000_000)
    with pytest.raises(ImportRejected, match="zip bomb"):
        _import(run, archive, manifest=manifest_csv([("huge.png", "a red circle", 0)]))


def test_a_file_that_is_not_a_zip_or_folder_is_refused(run, tmp_path):
    path = tmp_path / "images.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(ImportRejected, match="neither a folder nor a valid zip"):
        _import(run, path, manifest=manifest_csv([("a.png", "a red circle", 0)]))


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (b"name,caption\nx,y\n", "the header must name the columns"),
        (b"file,prompt,seed\n", "lists no images"),
        (b"file,prompt,seed\n,a red circle,0\n", "manifest line 2: no file"),
        (b"file,prompt,seed\na.png,,0\n", "no prompt"),
    ],
)
def test_a_malformed_manifest_is_refused_clearly(run, tmp_path, manifest, expected):
    archive = make_zip(tmp_path / "m.zip", {"a.png": png_bytes()})
    with pytest.raises(ImportRejected) as info:
        _import(run, archive, manifest=manifest)
    assert expected in str(info.value)


def test_without_a_manifest_the_import_says_where_it_looked(run, tmp_path):
    archive = make_zip(tmp_path / "n.zip", {"a.png": png_bytes()})
    with pytest.raises(ImportRejected, match=r"manifest\.csv or manifest\.jsonl"):
        _import(run, archive)


def test_reimporting_the_same_items_is_refused_unless_skipping(run, tmp_path):
    archive = make_zip(tmp_path / "r.zip", {
        "a.png": png_bytes(),
        "manifest.csv": manifest_csv([("a.png", "a red circle", 0)]),
    })
    _import(run, archive)
    with pytest.raises(ImportRejected, match="already has an image"):
        _import(run, archive)
    assert _import(run, archive, skip_existing=True).images_created == 0
    assert run.images.count() == 1


def test_files_written_before_a_database_failure_are_removed(run, tmp_path, settings,
                                                            monkeypatch):
    archive = make_zip(tmp_path / "ok.zip", {
        "a.png": png_bytes(color=(1, 1, 1)),
        "manifest.csv": manifest_csv([("a.png", "a red circle", 0)]),
    })

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Image.objects, "bulk_create", fail)
    with pytest.raises(RuntimeError):
        _import(run, archive)
    _assert_nothing_imported(run, Path(settings.MEDIA_ROOT))
