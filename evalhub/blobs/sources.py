"""Where imported files come from: a folder or a zip archive, read safely.

Both expose the same small interface: relative POSIX names and ``read(name)``. A zip is refused
whole, listing every offending entry, when entries would escape the import folder (absolute
paths, ``..``, symlinks), when two entries name the same file (``a.png`` twice, or ``a.png``
and ``./a.png``: which one was meant is unknown), and against zip bombs when an entry's declared
size is over the largest file an import takes or the declared sizes add up to more than the
configured total. An entry is never inflated past its declared size (``ZipSource.read``), so
these declared sizes bound what an import inflates. An entry damaged in the zip (its CRC-32 does
not match, or its compressed stream cannot be inflated) is that file's problem
(:class:`DamagedEntry`), listed by every import with the other files' problems.

No limit on the compression ratio: flat images reach deflate's own ceiling, as bombs do. A
flat 1024x1024 RGB BMP or uncompressed TIFF deflates about 1000:1 (4096x4096: 1028:1), a flat
8-bit BMP about 500-960:1, even a flat 4096x4096 PNG a further 110:1; a deflated zip bomb's
entry reaches about 1030:1 (a bzip2 one 880,000:1). A ratio cannot tell them apart; sizes can.
"""

from __future__ import annotations

import lzma
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

from django.conf import settings

from evalhub.blobs.validation import InvalidImage
from evalhub.blobs.video_validation import InvalidVideo
from evalhub.core.errors import ImportRejected


def largest_entry_bytes() -> int:
    """The largest file any import takes (an image, a video; manifests and prompt files are
    far smaller): a zip entry declaring more is refused before it is inflated."""
    return max(settings.EVALHUB_MAX_IMAGE_BYTES, settings.EVALHUB_MAX_VIDEO_BYTES)


class DamagedEntry(InvalidImage, InvalidVideo):
    """A zip entry that cannot be read back as it was stored: its CRC-32 does not match, its
    compressed stream is broken, it is encrypted or compressed with a method zipfile lacks.
    Both an invalid image and an invalid video, so that every import lists it with the other
    files' problems whatever the file is; the message names the file."""


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
    def __init__(self, archive: zipfile.ZipFile, *, max_total_bytes: int,
                 max_entry_bytes: int | None = None) -> None:
        self.archive = archive
        self._entries: dict[str, zipfile.ZipInfo] = {}
        entry_limit = largest_entry_bytes() if max_entry_bytes is None else max_entry_bytes
        escaping: list[str] = []
        named: dict[str, list[str]] = {}  # file name -> the entries naming it
        oversized: list[str] = []
        total = 0
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
            if info.file_size > entry_limit:
                oversized.append(f"{info.filename}: expands to {info.file_size:,} bytes, over "
                                 f"the {entry_limit:,} of the largest file an import takes")
            total += info.file_size
            named.setdefault(safe, []).append(info.filename)
            self._entries[safe] = info
        if escaping:
            raise ImportRejected(
                "The zip has entries that would escape the import folder; nothing was imported.",
                details=[f"unsafe entry: {name}" for name in escaping],
            )
        duplicated = {safe: names for safe, names in named.items() if len(names) > 1}
        if duplicated:
            raise ImportRejected(
                "The zip has several entries for the same file, so which one is meant is not "
                "clear; nothing was imported.",
                details=[f"{safe}: {len(names)} entries ({', '.join(map(repr, names))})"
                         for safe, names in duplicated.items()],
            )
        if oversized:
            raise ImportRejected(
                "The zip has entries larger than any file an import takes (possible zip bomb); "
                "nothing was imported.",
                details=oversized,
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
        try:
            with self.archive.open(info) as handle:
                data = handle.read(info.file_size + 1)
        # (NotImplementedError is a RuntimeError: first.)
        except NotImplementedError as exc:  # a compression method zipfile cannot read
            raise DamagedEntry(f"{name}: compressed with a method that cannot be read "
                               f"(zip method {info.compress_type}; use deflate or store)"
                               ) from exc
        except RuntimeError as exc:  # zipfile's "is encrypted, password required"
            if not info.flag_bits & 0x1:
                raise
            raise DamagedEntry(f"{name}: encrypted in the zip (imports read no passwords; "
                               "zip it again without one)") from exc
        except zipfile.BadZipFile as exc:  # the CRC-32 check, or a damaged local header
            why = "bad CRC-32" if "CRC" in str(exc) else str(exc)
            raise DamagedEntry(f"{name}: damaged in the zip ({why})") from exc
        except (zlib.error, lzma.LZMAError, EOFError, OSError) as exc:
            # A broken deflate or LZMA stream, or one that ends early; bz2 says "invalid data
            # stream" as an OSError, which otherwise is the disk's, not the zip's.
            if isinstance(exc, OSError) and info.compress_type != zipfile.ZIP_BZIP2:
                raise
            raise DamagedEntry(f"{name}: damaged in the zip (could not be decompressed)"
                               ) from exc
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
