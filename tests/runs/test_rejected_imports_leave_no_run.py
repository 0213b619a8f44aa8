"""A run created together with its images (one API request, or the CLI) is created only if the
import is accepted: a rejected import, a decompression bomb included, leaves no run behind, and
the refusal names the image's dimensions and the limit."""

import io
import struct
import zlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from evalhub.runs.models import GenerationRun, RunStatus
from tests.factories import (
    png_bytes,
)
from tests.runs.helpers import make_zip, manifest_csv

pytestmark = pytest.mark.django_db

BOMB_REFUSAL = "bomb.png: 60000 x 60000 = 3,600,000,000 pixels exceeds the limit of"


def _bomb_png() -> bytes:
    """A tiny PNG whose header claims 60000 x 60000 pixels."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _archive(tmp_path, image: bytes, name: str) -> io.BytesIO:
    path = make_zip(tmp_path / "run.zip", {
        name: image, "manifest.csv": manifest_csv([(name, "a red circle", 0)])})
    upload = io.BytesIO(path.read_bytes())
    upload.name = "run.zip"
    return upload


def _create(api, catalog, archive) -> object:
    prompt_set, checkpoint = catalog
    return api.post("/api/v1/runs/", {
        "checkpoint": checkpoint.pk, "prompt_set": prompt_set.pk, "name": "wide",
        "archive": archive}, format="multipart")


def test_a_run_and_its_images_are_created_in_one_request(api, scientist, catalog, tmp_path):
    api.force_authenticate(scientist)
    response = _create(api, catalog, _archive(tmp_path, png_bytes(), "a.png"))
    assert response.status_code == 201, response.json()
    assert response.json()["image_count"] == 1
    assert response.json()["status"] == RunStatus.COMPLETED


def test_a_rejected_import_through_the_api_leaves_no_run(api, scientist, catalog, tmp_path):
    api.force_authenticate(scientist)
    response = _create(api, catalog, _archive(tmp_path, _bomb_png(), "bomb.png"))
    assert response.status_code == 400
    assert "nothing was imported" in response.json()["detail"]
    assert any(error.startswith(BOMB_REFUSAL) for error in response.json()["errors"])
    assert not GenerationRun.objects.exists()


def test_a_rejected_import_through_the_cli_leaves_no_run(project, catalog, tmp_path):
    path = make_zip(tmp_path / "bomb.zip", {
        "bomb.png": _bomb_png(), "manifest.csv": manifest_csv([("bomb.png", "a red circle", 0)])})
    with pytest.raises(CommandError, match="60000 x 60000"):
        call_command("import_images", str(path), "--project", project.slug, "--run", "wide",
                     "--model", "sdxl", "--checkpoint", "step-5000", "--prompt-set", "shapes",
                     stdout=StringIO())
    assert not GenerationRun.objects.exists()
