import pytest

from evalhub.blobs.sources import open_source
from evalhub.core.errors import ImportRejected
from evalhub.runs.importing.services import reference_set_import
from evalhub.runs.models import ReferenceSet
from tests.factories import ProjectFactory
from tests.runs.helpers import distinct_pngs, make_zip


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


def test_an_invalid_image_rejects_the_reference_import(reference_set, tmp_path):
    archive = make_zip(tmp_path / "ref.zip", {"a.png": distinct_pngs(1)[0], "b.jpg": b"nope"})
    with open_source(archive, max_total_bytes=10**9) as source, pytest.raises(
        ImportRejected, match="invalid"
    ):
        reference_set_import(reference_set=reference_set, source=source)
    assert reference_set.images.count() == 0
