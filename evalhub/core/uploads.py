"""Turn an uploaded file into a path on disk for readers that need one (zipfile, folders)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile

#: Longest file name (in UTF-8 bytes) kept as is; file systems refuse names over 255 bytes.
_MAX_NAME_BYTES = 200


def _disk_name(upload_name: str | None) -> str:
    """The upload's own file name when it is safe to use on disk, else ``upload`` with its
    extension (the readers go by the extension)."""
    name = Path(upload_name or "").name
    if name and name not in (".", "..") and "\x00" not in name \
            and len(name.encode("utf-8", "surrogatepass")) <= _MAX_NAME_BYTES:
        return name
    suffix = Path(name).suffix
    return "upload" + (suffix if len(suffix.encode("utf-8", "surrogatepass")) <= 20 else "")


@contextmanager
def uploaded_file_path(upload: UploadedFile) -> Iterator[Path]:
    """A path holding ``upload``'s bytes, named like the file the user uploaded.

    The name matters: readers report problems by the path's name ("photos.zip is neither a
    folder nor a valid zip file"), and a temporary name (``tmpzw5ukceb.zip``) means nothing to
    the user. So the path lies in a private temporary folder, under the upload's own name;
    both are removed on exit.
    """
    with tempfile.TemporaryDirectory(prefix="evalhub-upload-") as folder:
        path = Path(folder) / _disk_name(upload.name)
        temporary_path = getattr(upload, "temporary_file_path", None)
        if temporary_path is not None:
            # A large upload Django already wrote to disk: link to it rather than copy it.
            path.symlink_to(temporary_path())
        else:
            upload.seek(0)
            with path.open("wb") as handle:
                shutil.copyfileobj(upload, handle)
        yield path
