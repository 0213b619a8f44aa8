import pytest

from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import ReferenceSet
from tests.factories import ProjectFactory
from tests.runs.helpers import distinct_pngs, make_zip, make_zip_entries


@pytest.fixture
def reference_set(db):
    return ReferenceSet.objects.create(project=ProjectFactory(), name="coco-val")


def test_every_image_of_the_zip_joins_the_reference_set(reference_set, tmp_path):
    images = distinct_pngs(4)
    archive = make_zip(tmp_path / "ref.zip", {
        **{f"img/{i}.png": data for i, data in enumerate(images)},
        "img/dup.png": images[0],
        "README.md": b"ignored",
    })
    with open_source(archive, max_total_bytes=10**9) as source:
        report = reference_set_import(reference_set=reference_set, source=source)
    assert report.images_created == 4
    assert reference_set.images.count() == 4


def test_importing_the_same_files_again_adds_nothing_and_says_so(reference_set, tmp_path,
                                                                  settings):
    images = distinct_pngs(3)
    archive = make_zip(tmp_path / "ref.zip", {f"{i}.png": data for i, data in enumerate(images)})
    with open_source(archive, max_total_bytes=10**9) as source:
        assert reference_set_import(reference_set=reference_set, source=source).images_created == 3
    # Full to its limit: the same files again are no new files, so not refused either.
    settings.EVALHUB_MAX_REFERENCE_IMAGES = 3
    with open_source(archive, max_total_bytes=10**9) as source:
        again = reference_set_import(reference_set=reference_set, source=source)
    assert again.images_created == 0 and reference_set.images.count() == 3


def test_the_zips_problems_are_listed_with_the_invalid_files_in_one_refusal(reference_set,
                                                                          tmp_path):
    images = distinct_pngs(3)
    archive = make_zip_entries(tmp_path / "ref.zip", [
        ("../x.png", images[0]), ("dup.png", images[1]), ("dup.png", images[2]),
        ("bad.png", b"plain text"), ("good.png", images[0])])
    with open_source(archive, max_total_bytes=10**9) as source, pytest.raises(
        ImportRejected
    ) as refused:
        reference_set_import(reference_set=reference_set, source=source)
    assert refused.value.message == (
        "The zip has entries that would escape the import folder. The zip has several entries "
        "for the same file, so which one is meant is not clear. Some reference files are "
        "invalid or of a format not accepted. Nothing was imported.")
    unsafe, dup, bad = refused.value.details
    assert (unsafe, dup) == ("unsafe entry: ../x.png", "dup.png: 2 entries ('dup.png', 'dup.png')")
    assert bad.startswith("bad.png: not an image")
    assert reference_set.images.count() == 0


def test_an_invalid_image_rejects_the_reference_import(reference_set, tmp_path):
    archive = make_zip(tmp_path / "ref.zip", {"a.png": distinct_pngs(1)[0], "b.jpg": b"nope"})
    with open_source(archive, max_total_bytes=10**9) as source, pytest.raises(
        ImportRejected, match="invalid"
    ):
        reference_set_import(reference_set=reference_set, source=source)
    assert reference_set.images.count() == 0
