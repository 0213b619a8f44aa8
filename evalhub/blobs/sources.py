"""Where imported files come from: a folder or a zip archive, read safely.

Both expose the same small interface: relative POSIX names and ``read(name)``. A source finds
what is wrong with its structure, entry by entry (:class:`SourceProblems`): zip entries that
would escape the import folder (absolute paths, ``..``, symlinks) and a folder's symbolic links
pointing outside it; two zip entries naming the same file (``a.png`` twice, or ``a.png`` and
``./a.png``: which one was meant is unknown); and, against zip bombs, an entry whose declared
size is over the largest file an import takes. Such an entry is never extracted, inflated or
opened: an escaping name is not among ``names()``, and ``read`` refuses a name with a problem.
The imports take these problems into their own list with every other problem of the import
(``take_problems``: runs/importing/services.py), so that one refusal says them all; any other
use of a source with problems (``names``, ``read``, ``size`` before ``take_problems``) is
refused with them, as the whole zip was before. The declared sizes adding up to more than the
configured total refuse the zip when it is opened. An entry is never inflated past its
declared size (``ZipSource.read``), so these declared sizes bound what an import inflates. An
entry damaged in the zip (its CRC-32 does not match, or its compressed stream cannot be
inflated) is that file's problem (:class:`DamagedEntry`), listed by every import with the
other files' problems.

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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SourceProblems:
    """What is wrong with a folder's or zip's structure. ``sentences``: one per kind of problem,
    the refusal's opening; ``details``: one line per entry, naming it; ``unreadable``: the names
    among ``names()`` that have a problem (a duplicated, oversized or symbolic-link entry): an
    import lists them as found but never reads them, so that a manifest line naming one is not
    said to name a missing file as well."""

    sentences: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    unreadable: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.details)

    def refusal(self) -> ImportRejected:
        """The refusal of a use that does not list these problems with its own."""
        return ImportRejected(" ".join([*self.sentences, "Nothing was imported."]),
                              details=list(self.details))


class FileSource(Protocol):
    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...

    def size(self, name: str) -> int: ...

    def take_problems(self) -> SourceProblems: ...


class _Checked:
    """The structural problems a source found when it was opened (:class:`SourceProblems`),
    refused at its first use unless an import took them into its own list."""

    def __init__(self, problems: SourceProblems) -> None:
        self._problems = problems
        self._taken = False

    def take_problems(self) -> SourceProblems:
        """This source's structural problems, for the caller to list with its own; after
        this, names and reads no longer refuse the source (a name with a problem still
        refuses to be read)."""
        self._taken = True
        return self._problems

    def _check(self, name: str | None = None) -> None:
        if self._problems and not self._taken:
            raise self._problems.refusal()
        if name is not None and name in self._problems.unreadable:
            raise ImportRejected(f"{name} is not read: the folder or zip has a problem with it.",
                                 details=list(self._problems.details))


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


def _unsafe(name: str, why: str = "") -> str:
    """A problem's line for an entry that would escape the import folder."""
    return f"unsafe entry: {name}" + (f" ({why})" if why else "")


ESCAPING_ENTRIES = "The zip has entries that would escape the import folder."
ESCAPING_LINKS = "The folder has symbolic links pointing outside the import folder."
DUPLICATED_ENTRIES = ("The zip has several entries for the same file, so which one is meant is "
                      "not clear.")
OVERSIZED_ENTRIES = ("The zip has entries larger than any file an import takes (possible zip "
                     "bomb).")


class FolderSource(_Checked):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, Path] = {}
        escaping: list[str] = []
        links: list[str] = []
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root).as_posix()
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(self.root):
                    escaping.append(_unsafe(relative, "symbolic link pointing outside the import "
                                                      f"folder, to {target}"))
                    links.append(relative)  # a manifest may name it: listed, never read
                    continue
            if path.is_file():
                self._files[relative] = path
        super().__init__(SourceProblems(
            sentences=(ESCAPING_LINKS,) if escaping else (), details=tuple(escaping),
            unreadable=frozenset(links)))
        self._listed = sorted([*self._files, *links], key=PurePosixPath)

    def names(self) -> list[str]:
        self._check()
        return list(self._listed)

    def size(self, name: str) -> int:
        self._check(name)
        return self._files[name].stat().st_size

    def read(self, name: str) -> bytes:
        self._check(name)
        return self._files[name].read_bytes()


class ZipSource(_Checked):
    def __init__(self, archive: zipfile.ZipFile, *, max_total_bytes: int,
                 max_entry_bytes: int | None = None) -> None:
        self.archive = archive
        self._entries: dict[str, zipfile.ZipInfo] = {}
        entry_limit = largest_entry_bytes() if max_entry_bytes is None else max_entry_bytes
        escaping: list[str] = []
        unreadable: set[str] = set()  # listed by names(), never read
        named: dict[str, list[str]] = {}  # file name -> the entries naming it
        oversized: list[str] = []
        total = 0
        for info in archive.infolist():
            mode = info.external_attr >> 16
            safe = _safe_relative(info.filename)
            if stat.S_ISLNK(mode):
                escaping.append(_unsafe(info.filename, "symbolic link"))
                if safe is not None:
                    unreadable.add(safe)
                    named.setdefault(safe, []).append(info.filename)
                continue
            if safe is None:
                escaping.append(_unsafe(info.filename))
                continue
            if info.is_dir():
                continue
            if info.file_size > entry_limit:
                oversized.append(f"{info.filename}: expands to {info.file_size:,} bytes, over "
                                 f"the {entry_limit:,} of the largest file an import takes")
                unreadable.add(safe)
            total += info.file_size
            named.setdefault(safe, []).append(info.filename)
            self._entries[safe] = info
        if total > max_total_bytes:
            raise ImportRejected(
                f"The zip expands to {total} bytes, over the limit of {max_total_bytes}."
            )
        duplicated = {safe: names for safe, names in named.items() if len(names) > 1}
        unreadable |= set(duplicated)
        kinds = [(ESCAPING_ENTRIES, escaping),
                 (DUPLICATED_ENTRIES,
                  [f"{safe}: {len(names)} entries ({', '.join(map(repr, names))})"
                   for safe, names in duplicated.items()]),
                 (OVERSIZED_ENTRIES, oversized)]
        super().__init__(SourceProblems(
            sentences=tuple(sentence for sentence, lines in kinds if lines),
            details=tuple(line for _, lines in kinds for line in lines),
            unreadable=frozenset(unreadable)))
        self._listed = list(dict.fromkeys([*self._entries, *sorted(unreadable)]))

    def names(self) -> list[str]:
        self._check()
        return list(self._listed)

    def size(self, name: str) -> int:
        self._check(name)
        return self._entries[name].file_size

    def read(self, name: str) -> bytes:
        self._check(name)
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
