"""A zip to import from: ordinary images are read whatever they compress to; a zip bomb is
refused by the sizes its entries declare, before anything is inflated; two entries for one
file are refused as ambiguous. Every offending entry is named: by the source's first use, or
by the import that takes them into its own list of problems (tests/runs/test_image_import.py)."""

import io
import warnings
import zipfile

import pytest
from PIL import Image as PILImage

from evalhub.blobs.sources import DamagedEntry, ZipSource, largest_entry_bytes, open_source
from evalhub.blobs.validation import InvalidImage
from evalhub.blobs.video_validation import InvalidVideo
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import run_images_import
from tests.factories import GenerationRunFactory, PromptFactory, png_bytes
from tests.runs.helpers import damage_zip_entry, manifest_csv, mark_zip_entry

LIMIT = 10**9


def _flat(fmt: str, size=(1024, 1024)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def _zip(path, entries: list[tuple[str, bytes]], *, deflate: bool = True):
    """A zip with these entries in this order; names may repeat."""
    with warnings.catch_warnings(), zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    ) as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name
        for name, data in entries:
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_a_flat_uncompressed_image_deflating_a_thousandfold_is_read(tmp_path, fmt):
    data = _flat(fmt)
    path = _zip(tmp_path / "flat.zip", [("flat.img", data)])
    info = zipfile.ZipFile(path).getinfo("flat.img")
    assert info.file_size / info.compress_size > 900  # what a ratio limit of 200 refused

    with open_source(path, max_total_bytes=LIMIT) as source:
        assert source.read("flat.img") == data


@pytest.mark.django_db
def test_a_run_imports_flat_bmp_images_from_a_deflated_zip(tmp_path):
    run = GenerationRunFactory()
    PromptFactory(prompt_set=run.prompt_set, text="a red square")
    path = _zip(tmp_path / "run.zip", [
        ("flat.bmp", _flat("BMP")),
        ("manifest.csv", manifest_csv([("flat.bmp", "a red square", 0)])),
    ])
    with open_source(path, max_total_bytes=LIMIT) as source:
        report = run_images_import(run=run, source=source)
    assert report.images_created == 1
    assert run.images.get().blob.width == 1024


def test_the_largest_entry_is_the_largest_file_an_import_takes(settings):
    settings.EVALHUB_MAX_IMAGE_BYTES = 1000
    settings.EVALHUB_MAX_VIDEO_BYTES = 3000
    assert largest_entry_bytes() == 3000


def test_every_entry_declaring_more_than_an_import_takes_is_named_before_inflating(
        tmp_path, settings, monkeypatch):
    settings.EVALHUB_MAX_IMAGE_BYTES = settings.EVALHUB_MAX_VIDEO_BYTES = 1_000_000
    path = _zip(tmp_path / "bomb.zip", [
        ("ok.png", png_bytes()),
        ("bomb1.png", b"\x00" * 5_000_000),
        ("bomb2.png", b"\x00" * 2_000_000),
    ])
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated"))

    with open_source(path, max_total_bytes=LIMIT) as source, \
            pytest.raises(ImportRejected, match="possible zip bomb") as refused:
        source.names()

    assert [detail.split(":")[0] for detail in refused.value.details] == [
        "bomb1.png", "bomb2.png"]
    assert "5,000,000 bytes" in refused.value.details[0]


def test_entries_adding_up_past_the_total_are_refused(tmp_path):
    path = _zip(tmp_path / "big.zip", [("a.png", b"\x00" * 6000), ("b.png", b"\x00" * 6000)])
    with zipfile.ZipFile(path) as archive, pytest.raises(ImportRejected, match="over the limit"):
        ZipSource(archive, max_total_bytes=10_000)


@pytest.mark.parametrize("names", [
    ["good.png", "good.png"],
    ["good.png", "./good.png"],
    ["sub/good.png", "sub//good.png"],
])
def test_two_entries_for_one_file_are_refused_as_ambiguous(tmp_path, names):
    first, second = png_bytes(color=(1, 2, 3)), png_bytes(color=(4, 5, 6))
    path = _zip(tmp_path / "dup.zip", [(names[0], first), ("other.png", png_bytes()),
                                       (names[1], second)])

    with open_source(path, max_total_bytes=LIMIT) as source, \
            pytest.raises(ImportRejected, match="several entries for the same file") as refused:
        source.read("other.png")

    assert refused.value.details == [
        f"{names[0].replace('//', '/')}: 2 entries ({names[0]!r}, {names[1]!r})"]


def test_every_duplicated_file_is_listed(tmp_path):
    path = _zip(tmp_path / "dup.zip", [("a.png", b"1"), ("b.png", b"2"), ("./a.png", b"3"),
                                       ("b.png", b"4"), ("c.png", b"5")])
    with open_source(path, max_total_bytes=LIMIT) as source, \
            pytest.raises(ImportRejected) as refused:
        source.names()
    assert [detail.split(":")[0] for detail in refused.value.details] == ["a.png", "b.png"]


def test_every_structural_problem_is_taken_at_once_and_its_entries_never_read(
        tmp_path, settings, monkeypatch):
    # An import takes them into its own list (runs/importing/services.py); any other use of
    # the source is refused with them, as the whole zip was.
    settings.EVALHUB_MAX_IMAGE_BYTES = settings.EVALHUB_MAX_VIDEO_BYTES = 1_000_000
    path = _zip(tmp_path / "all.zip", [
        ("../evil.png", b"1"), ("/abs.png", b"2"), ("dup.png", b"3"), ("./dup.png", b"4"),
        ("bomb.png", b"\x00" * 2_000_000), ("ok.png", b"5")])
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated"))

    with open_source(path, max_total_bytes=LIMIT) as source:
        with pytest.raises(ImportRejected) as refused:
            source.names()
        problems = source.take_problems()
        assert refused.value.message == " ".join([*problems.sentences, "Nothing was imported."])
        assert refused.value.details == list(problems.details) == [
            "unsafe entry: ../evil.png", "unsafe entry: /abs.png",
            "dup.png: 2 entries ('dup.png', './dup.png')",
            "bomb.png: expands to 2,000,000 bytes, over the 1,000,000 of the largest file an "
            "import takes"]
        assert len(problems.sentences) == 3
        # Taken: the names are listed (a manifest may name them), those with a problem
        # are never read.
        assert sorted(source.names()) == ["bomb.png", "dup.png", "ok.png"]
        assert problems.unreadable == {"dup.png", "bomb.png"}
        for name in problems.unreadable:
            with pytest.raises(ImportRejected, match=f"{name} is not read"):
                source.read(name)


@pytest.mark.parametrize(("deflate", "problem"), [
    (False, "a.png: damaged in the zip (bad CRC-32)"),
    (True, "a.png: damaged in the zip (could not be decompressed)"),
])
def test_a_damaged_entry_is_that_files_problem_as_an_image_or_a_video(tmp_path, deflate,
                                                                      problem):
    path = damage_zip_entry(_zip(tmp_path / "damaged.zip", [("a.png", _flat("PNG"))],
                                 deflate=deflate), "a.png")
    with open_source(path, max_total_bytes=LIMIT) as source, \
            pytest.raises(DamagedEntry) as refused:
        source.read("a.png")
    # Every import lists a file's InvalidImage or InvalidVideo among its problems.
    assert isinstance(refused.value, InvalidImage) and isinstance(refused.value, InvalidVideo)
    assert str(refused.value) == problem


@pytest.mark.parametrize(("marks", "problem"), [
    ({"flag_bits": 0x1},
     "a.png: encrypted in the zip (imports read no passwords; zip it again without one)"),
    ({"compress_type": 99},  # AES, as 7-Zip and WinZip write it
     "a.png: compressed with a method that cannot be read (zip method 99; use deflate or "
     "store)"),
])
def test_an_encrypted_entry_or_an_unreadable_method_is_that_files_problem(tmp_path, marks,
                                                                         problem):
    path = mark_zip_entry(_zip(tmp_path / "odd.zip", [("a.png", _flat("PNG"))]), "a.png",
                          **marks)
    with open_source(path, max_total_bytes=LIMIT) as source, \
            pytest.raises(DamagedEntry) as refused:
        source.read("a.png")
    assert str(refused.value) == problem
