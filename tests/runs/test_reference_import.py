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


def test_an_invalid_image_rejects_the_reference_import(reference_set, tmp_path):
    archive = make_zip(tmp_path / "ref.zip", {"a.png": distinct_pngs(1)[0], "b.jpg": b"nope"})
    with open_source(archive, max_total_bytes=10**9) as source, pytest.raises(
        ImportRejected, match="invalid"
    ):
        reference_set_import(reference_set=reference_set, source=source)
    assert reference_set.images.count() == 0
