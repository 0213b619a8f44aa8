"""Where imported files come from: a folder or a zip archive, read safely.

Both expose the same small interface: relative POSIX names and ``read(name)``. A zip whose
entries would escape the import folder (absolute paths, ``..``, symlinks) is refused whole,
and so is a zip whose declared sizes add up to more than the configured limit (zip bombs).
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

from evalhub.core.errors import ImportRejected

# Largest plausible ratio for image data; PNG/JPEG barely compress, bombs compress ~1000x.
MAX_COMPRESSION_RATIO = 200


class FileSource(Protocol):
    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...

    def size(self, name: str) -> int: ...


def _safe_relative(name: str) -> str | None:
    """Normalised relative name, or None when the name would escape the import root."""
    cleaned = name.replace("\\", "/")
    path = PurePosixPath(cleaned)
    if path.is_absolute() or cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        return None
    if any(part == ".." for part in path.parts):
        return None
    parts = [p for p in path.parts if p not in ("", ".")]
    return "/".join(parts) if parts else None


class FolderSource:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, Path] = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(self.root):
                    raise ImportRejected(
                        f"{path.relative_to(self.root)} is a symbolic link pointing outside "
                        f"the import folder ({target}); refusing the import."
                    )
            if path.is_file():
                self._files[path.relative_to(self.root).as_posix()] = path

    def names(self) -> list[str]:
        return list(self._files)

    def size(self, name: str) -> int:
        return self._files[name].stat().st_size

    def read(self, name: str) -> bytes:
        return self._files[name].read_bytes()


class ZipSource:
    def __init__(self, archive: zipfile.ZipFile, *, max_total_bytes: int) -> None:
        self.archive = archive
        self._entries: dict[str, zipfile.ZipInfo] = {}
        escaping, total = [], 0
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                escaping.append(f"{info.filename} (symbolic link)")
                continue
            safe = _safe_relative(info.filename)
            if safe is None:
                escaping.append(info.filename)
                continue
            if info.is_dir():
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
                raise ImportRejected(
                    f"{info.filename}: compression ratio {info.file_size / info.compress_size:.0f}"
                    f" exceeds {MAX_COMPRESSION_RATIO} (possible zip bomb); refusing the import."
                )
            total += info.file_size
            self._entries[safe] = info
        if escaping:
            raise ImportRejected(
                "The zip has entries that would escape the import folder; nothing was imported.",
                details=[f"unsafe entry: {name}" for name in escaping],
            )
        if total > max_total_bytes:
            raise ImportRejected(
                f"The zip expands to {total} bytes, over the limit of {max_total_bytes}."
            )

    def names(self) -> list[str]:
        return list(self._entries)

    def size(self, name: str) -> int:
        return self._entries[name].file_size

    def read(self, name: str) -> bytes:
        info = self._entries[name]
        # Read at most the declared size + 1: a lying header cannot make us inflate more.
        with self.archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise ImportRejected(f"{name}: zip entry size does not match its header")
        return data


@contextmanager
def open_source(path: Path, *, max_total_bytes: int) -> Iterator[FileSource]:
    """Open a folder or a ``.zip`` file as a :class:`FileSource`."""
    if path.is_dir():
        yield FolderSource(path)
        return
    if not path.exists():
        raise ImportRejected(f"{path} does not exist.")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ImportRejected(f"{path.name} is neither a folder nor a valid zip file.") from exc
    with archive:
        yield ZipSource(archive, max_total_bytes=max_total_bytes)
