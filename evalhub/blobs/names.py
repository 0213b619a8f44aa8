"""Names: the internal storage names of derivatives, and the per-project names clients see.

**Internal names** (never leave the server). A blob's display derivative is stored as
``display/<2 hex>/<display_token>.r<rule>.webp`` (the rule it was encoded by, display.py; rule
1's names had none: ``<display_token>.<png|jpg|webp>``) and its Deep Zoom pyramid under its
content hash (blobs/tiles.py); a video's rendition and strip as
``video/<2 hex>/<rendition_token>...``. ``display_token`` and ``video_token`` are
``HMAC-SHA256(SECRET_KEY-derived key, sha256)``, stored on the blob when it is created, so the
files stay where they are when ``SECRET_KEY`` changes. Blobs are content-addressed and shared
by every project, so these names are the same in every project holding the same bytes: that is
why no URL, payload or redirect carries them (the media view streams or hands the file to nginx
by this name; in S3's ``signed`` mode derivatives are streamed too, never redirected to the
bucket: docs/deployment.md).

**Per-project names** (what browsers see). The same file is addressed in each project by a name
of its own: :func:`project_display_name` (a display derivative and its tiles) and
:func:`project_video_name` (a video's rendition and thumbnail strip), 64 hex digits each. The
name is (kind, project id, blob id) encrypted with AES-SIV (RFC 5297, ``cryptography``'s
``AESSIV``: deterministic authenticated encryption) under a key derived from ``SECRET_KEY``:
the 16-byte synthetic IV and the 16 encrypted bytes.

- Two projects get unrelated names for the same bytes, and nobody without ``SECRET_KEY`` can
  compute or link them: an annotator of project A who also works in project B cannot match an
  image shown blind in A with a file they import or see in B by its name.
- The server reads a name back without a lookup table (:func:`resolve_display_name`: decrypt;
  the IV authenticates the content, so a made-up, altered or old global name, or a video's
  name offered as an image's, is refused with no query), so handing out a name costs no
  query (the rating path's query budget) and nothing has to be created before a URL is given,
  whoever created the image (import, generation, a prompt's source, a fixture).
- Names depend on ``SECRET_KEY``: after a change, pages opened before it load stale URLs (404)
  until reloaded, as their sessions would be. Stored files keep their internal names.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from django.conf import settings
from django.utils.crypto import salted_hmac

DISPLAY_DIR = "display"
_SALT = "evalhub.blobs.display-token"


def display_token(sha256: str) -> str:
    """The *internal* name of a blob's display derivative (storage only, never sent):
    ``HMAC-SHA256(SECRET_KEY-derived key, sha256)`` in hex (64 characters)."""
    return salted_hmac(_SALT, sha256, algorithm="sha256").hexdigest()


def display_rule_suffix(rule: int, extension: str) -> str:
    """How the storage name of every derivative written by ``rule`` ends: ``.r<rule>.<ext>``
    (what display.py reads the rule from, in Python and in SQL)."""
    return f".r{rule}.{extension}"


def display_path(token: str, rule: int, extension: str) -> str:
    """Storage name of a derivative written by ``rule`` (display.py ``DISPLAY_RULE``):
    ``display/<2 hex>/<token>.r<rule>.<ext>`` (one fan-out level)."""
    return f"{DISPLAY_DIR}/{token[:2]}/{token}{display_rule_suffix(rule, extension)}"


_VIDEO_SALT = "evalhub.blobs.video-token"
VIDEO_DIR = "video"


def video_token(sha256: str) -> str:
    """The *internal* name of a video's rendition and thumbnail strip (storage only):
    ``HMAC-SHA256`` of the original's sha256 under a salt of its own (64 hex digits)."""
    return salted_hmac(_VIDEO_SALT, sha256, algorithm="sha256").hexdigest()


def video_path(token: str, suffix: str) -> str:
    """Storage name of a video derivative: ``video/<2 hex>/<token><suffix>``."""
    return f"{VIDEO_DIR}/{token[:2]}/{token}{suffix}"


# Per-project names -------------------------------------------------------------------------

KIND_DISPLAY = 1  # an image's display derivative and its tile pyramid
KIND_VIDEO = 2  # a video's rendition and thumbnail strip
_NAME_SALT = "evalhub.blobs.project-name"
_MAX_ID = (1 << 56) - 1  # 7 bytes per id
_NAME_BYTES = 32  # the 16-byte synthetic IV and the 16-byte plaintext: 64 hex digits


@lru_cache(maxsize=4)
def _cipher(secret: str) -> AESSIV:
    """AES-256-SIV under a 64-byte key derived from ``secret`` (cached per secret, so a changed
    ``SECRET_KEY`` takes effect)."""
    key = salted_hmac(_NAME_SALT, "aes-siv-key", secret=secret, algorithm="sha512").digest()
    return AESSIV(key)


def _associated(kind: int) -> list[bytes]:
    return [_NAME_SALT.encode(), bytes([kind])]


def _name(kind: int, project_id: int, object_id: int) -> str:
    if not (0 < project_id <= _MAX_ID and 0 < object_id <= _MAX_ID):
        raise ValueError("A per-project name needs a saved project and a saved blob.")
    plain = bytes([kind]) + project_id.to_bytes(7, "big") + object_id.to_bytes(7, "big") + b"\0"
    return _cipher(settings.SECRET_KEY).encrypt(plain, _associated(kind)).hex()


def _resolve(kind: int, name: str) -> tuple[int, int] | None:
    if len(name) != 2 * _NAME_BYTES:
        return None
    try:
        plain = _cipher(settings.SECRET_KEY).decrypt(bytes.fromhex(name), _associated(kind))
    except (ValueError, InvalidTag):
        return None
    if len(plain) != 16 or plain[0] != kind:
        return None
    project_id = int.from_bytes(plain[1:8], "big")
    object_id = int.from_bytes(plain[8:15], "big")
    if not project_id or not object_id:
        return None
    return project_id, object_id


def project_display_name(project_id: int, blob_id: int) -> str:
    """The name of image blob ``blob_id``'s display derivative and tiles in project
    ``project_id`` (64 hex digits; module doc)."""
    return _name(KIND_DISPLAY, project_id, blob_id)


def resolve_display_name(name: str) -> tuple[int, int] | None:
    """``(project id, blob id)`` of a :func:`project_display_name`; None for anything else
    (an old global token, a forged or mistyped name, a video's name)."""
    return _resolve(KIND_DISPLAY, name)


def project_video_name(project_id: int, video_id: int) -> str:
    """The name of video ``video_id``'s rendition and thumbnail strip in project
    ``project_id`` (64 hex digits; module doc)."""
    return _name(KIND_VIDEO, project_id, video_id)


def resolve_video_name(name: str) -> tuple[int, int] | None:
    """``(project id, video id)`` of a :func:`project_video_name`; None for anything else."""
    return _resolve(KIND_VIDEO, name)
