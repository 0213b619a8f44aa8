"""What an import does with a file, by its name: the one rule of run and reference-set imports.

- an accepted image extension (blobs/validation.py ``EXTENSIONS``) or video extension
  (blobs/video_validation.py ``VIDEO_EXTENSIONS``): the file is checked as an image or video;
- the extension of another image or video format (HEIC, AVIF, SVG ...; AVI, WMV, MPEG ...):
  the file is refused by its name, unread, and named in the refusal (an AVI gets the message a
  video of that container gets), so that a folder of a format EvalHub does not take is never
  imported without it;
- anything else (README.txt, a CSV, macOS's ``.DS_Store`` and ``__MACOSX/`` entries, whatever
  their extension): not a run's or a reference set's file. A run takes the files its manifest
  lists, whatever their role (a listed file of no known extension is checked as an image, by
  its bytes); a reference set takes every image or video file. What an import does not take
  is skipped and listed in its answer (``ImportReport.skipped_files``), never dropped silently.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from enum import StrEnum

from evalhub.blobs.validation import EXTENSIONS, InvalidImage
from evalhub.blobs.video_validation import InvalidVideo, is_video_name, refused_video_name
from evalhub.core.text import counted
from evalhub.runs.models import MediaKind

# Image formats EvalHub does not take (blobs/validation.py ``ACCEPTED_FORMATS``). Not ".jfif",
# ".jpe" or ".apng": their bytes are JPEG or PNG, which a run's import accepts by content.
OTHER_IMAGE_EXTENSIONS = {".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".jpx", ".svg",
                          ".svgz", ".ico", ".icns", ".psd", ".xcf", ".tga", ".exr", ".hdr",
                          ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf",
                          ".raw", ".pbm", ".pgm", ".ppm", ".pnm", ".pcx", ".eps", ".dds"}

# Files an operating system adds to a folder or zip: never a run's or a set's file, whatever
# their extension (``__MACOSX/clips/._a.mp4`` is a resource fork, not a video).
_SYSTEM_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}

#: Names of skipped files an answer lists (it always gives their number).
SKIPPED_NAMES_LISTED = 100
#: Names a message lists before "and N more".
NAMES_SHOWN = 5


class Role(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    REFUSED_IMAGE = "refused image"  # an image format EvalHub does not take
    REFUSED_VIDEO = "refused video"  # a video format EvalHub does not take
    OTHER = "other"


def file_role(name: str) -> Role:
    """What ``name``'s extension makes of the file (module doc)."""
    extension = posixpath.splitext(name)[1].lower()
    if is_video_name(name):
        return Role.VIDEO
    if extension in EXTENSIONS:
        return Role.IMAGE
    if refused_video_name(name) is not None:
        return Role.REFUSED_VIDEO
    if extension in OTHER_IMAGE_EXTENSIONS:
        return Role.REFUSED_IMAGE
    return Role.OTHER


def is_system_file(name: str) -> bool:
    """Whether ``name`` is a file an operating system added (``.DS_Store``, ``Thumbs.db``,
    macOS's ``__MACOSX/`` folder and ``._`` resource forks)."""
    parts = name.split("/")
    return ("__MACOSX" in parts[:-1] or parts[-1].startswith("._")
            or parts[-1].lower() in _SYSTEM_NAMES)


def media_kind(name: str) -> str:
    """The kind of output a file listed by a run's manifest is: a video for a video
    extension, accepted or not (an AVI among MP4s is a refused video, not an image)."""
    return (MediaKind.VIDEO if file_role(name) in (Role.VIDEO, Role.REFUSED_VIDEO)
            else MediaKind.IMAGE)


def refusal(name: str) -> InvalidImage | InvalidVideo | None:
    """The refusal of a file of a format EvalHub does not take, by its name, or None."""
    role = file_role(name)
    if role == Role.REFUSED_VIDEO:
        return InvalidVideo(refused_video_name(name))
    if role == Role.REFUSED_IMAGE:
        extension = posixpath.splitext(name)[1].lower()
        return InvalidImage(f"{name}: image format {extension!r} is not accepted (accepted: "
                            f"{', '.join(sorted(EXTENSIONS))})")
    return None


def names_shown(names: Sequence[str], *, total: int | None = None,
                limit: int = NAMES_SHOWN) -> str:
    """``"a, b, c, d, e and 7 more"``: the first ``limit`` of ``names``, and how many of
    ``total`` (default: all of ``names``) are left out."""
    total = len(names) if total is None else total
    shown = ", ".join(names[:limit])
    rest = total - min(limit, len(names))
    return f"{shown} and {rest} more" if rest > 0 else shown


def skipped_sentence(count: int, names: Sequence[str], *, why: str) -> str:
    """``"2 files skipped (not in the manifest): README.txt, notes.md"``: what a command says
    of an import's skipped files (``ImportReport.files_skipped``, ``skipped_files``)."""
    return (f"{counted(count, 'file')} skipped ({why}): "
            f"{names_shown(names, total=count, limit=20)}")
