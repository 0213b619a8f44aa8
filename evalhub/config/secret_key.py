"""The embedded default's SECRET_KEY: made once, kept under VAR_DIR, read by every process."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret_key"


def embedded_secret_key(var_dir: Path) -> str:
    """Return the key stored in ``var_dir/secret_key``, creating it (mode 0600) if missing.

    ``make run`` and any command run later in another shell read the same file, so sessions,
    signed values and the keyed display names stay valid between them. Processes starting
    together (web, worker) may race to create it: the key is written to a private temporary
    file first and linked into place, which fails if another process won, so every process
    reads one complete key.
    """
    path = var_dir / SECRET_KEY_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        temporary = var_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it and EvalHub makes a new key.")
    return key
