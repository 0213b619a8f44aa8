"""Build folders and zips to import, good and bad."""

from __future__ import annotations

import csv
import io
import struct
import warnings
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
    path: Path, files: dict[str, bytes], *, symlinks: dict[str, str] | None = None,
    deflate: bool = False,
) -> Path:
    """A zip of ``files``, stored (or, with ``deflate``, deflated)."""
    compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, target)
    return path


def make_zip_entries(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    """A zip with these entries in this order, names as given: repeated (``dup.png`` twice),
    absolute or climbing out (``/abs.png``, ``../evil.png``), as a careless or hostile tool
    writes them."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name
        for name, data in entries:
            archive.writestr(name, data)
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


def damage_zip_entry(path: Path, name: str) -> Path:
    """Damage entry ``name`` of the zip at ``path`` in place, its headers left intact: a stored
    entry gets one byte of its data flipped (its CRC-32 no longer matches); a deflated one
    gets its stream's first byte set to 0xFF (a reserved block type, which zlib refuses)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    if info.compress_type == zipfile.ZIP_STORED:
        data[start + info.compress_size // 2] ^= 0xFF
    else:
        data[start] = 0xFF
    path.write_bytes(bytes(data))
    return path


def mark_zip_entry(path: Path, name: str, *, flag_bits: int = 0,
                   compress_type: int | None = None) -> Path:
    """Set entry ``name``'s general-purpose flag bits (0x1: encrypted) and/or compression
    method in both its local and its central header, as another zip tool would have written
    them; its data is left as it is."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = bytearray(path.read_bytes())
    offsets = [info.header_offset + 6]  # local header: flags at 6, method at 8
    start = 0
    while (at := data.find(b"PK\x01\x02", start)) != -1:  # central headers: flags 8, method 10
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_length].decode() == info.filename:
            offsets.append(at + 8)
        start = at + 4
    for at in offsets:
        flags, method = struct.unpack_from("<HH", data, at)
        struct.pack_into("<HH", data, at, flags | flag_bits,
                         method if compress_type is None else compress_type)
    path.write_bytes(bytes(data))
    return path
