"""Build folders and zips to import, good and bad."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from tests.factories import png_bytes


def write_manifest(path: Path, rows: list[tuple[str, str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "prompt", "seed"])
        writer.writerows(rows)
    return path


def make_zip(
    path: Path, files: dict[str, bytes], *, symlinks: dict[str, str] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, target)
    return path


def manifest_csv(rows: list[tuple[str, str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "prompt", "seed"])
    writer.writerows(rows)
    return out.getvalue().encode()


def distinct_pngs(count: int) -> list[bytes]:
    return [png_bytes(color=(10 * i % 256, 20, 30), size=(16, 16)) for i in range(count)]


def run_sent(sent_tasks: list) -> None:
    """Run the tasks recorded by the ``sent_tasks`` fixture, as a worker would (in the order
    they were sent), and forget them."""
    import evalhub.blobs.tasks
    import evalhub.runs.tasks  # noqa: F401  (importing them registers their tasks by name)
    from evalhub.config.celery import app

    for name, args in sent_tasks:
        app.tasks[name](*args)
    sent_tasks.clear()
