"""Opaque names for what annotators' browsers receive.

A display derivative (and the tile pyramid of a large image) is addressed by a *display token*:
``HMAC-SHA256(key, sha256 of the original)`` as 64 hex digits, keyed by Django's
``SECRET_KEY`` (``salted_hmac`` with a salt of its own). The token is stable for one
deployment, so redelivered tasks and concurrent builds agree on one file name; it is keyed, so
somebody holding an original (a scientist, or anybody holding a public model's output) cannot
compute the name it is served under and match an anonymous image to its model by hash.

The token is stored on the blob when the blob is created, so rotating ``SECRET_KEY`` changes
only the names of blobs created afterwards; existing names keep resolving.
"""

from __future__ import annotations

from django.utils.crypto import salted_hmac

DISPLAY_DIR = "display"
_SALT = "evalhub.blobs.display-token"


def display_token(sha256: str) -> str:
    """``HMAC-SHA256(SECRET_KEY-derived key, sha256)`` in hex (64 characters)."""
    return salted_hmac(_SALT, sha256, algorithm="sha256").hexdigest()


def display_path(token: str, extension: str) -> str:
    """Storage name of a derivative: ``display/<2 hex>/<token>.<ext>`` (one fan-out level)."""
    return f"{DISPLAY_DIR}/{token[:2]}/{token}.{extension}"


_VIDEO_SALT = "evalhub.blobs.video-token"
VIDEO_DIR = "video"


def video_token(sha256: str) -> str:
    """The opaque name of a video's rendition and thumbnail strip: ``HMAC-SHA256`` of the
    original's sha256 under a salt of its own (64 hex digits)."""
    return salted_hmac(_VIDEO_SALT, sha256, algorithm="sha256").hexdigest()


def video_path(token: str, suffix: str) -> str:
    """Storage name of a video derivative: ``video/<2 hex>/<token><suffix>``."""
    return f"{VIDEO_DIR}/{token[:2]}/{token}{suffix}"
