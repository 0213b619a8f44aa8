"""File storage configuration: local filesystem by default, S3-compatible when configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalhub.config.env import ImproperlyConfiguredEnv, env_int, env_str


def storages_from_env(media_root: str) -> dict[str, Any]:
    """Build Django's ``STORAGES`` from the environment.

    ``EVALHUB_STORAGE=s3`` switches media to django-storages' S3 backend (AWS S3, MinIO, R2,
    ...) so that GPU workers on other hosts read and write the same files; the bucket and
    endpoint come from the ``AWS_*`` variables django-storages documents.
    """
    backend = (env_str("EVALHUB_STORAGE") or "local").lower()
    staticfiles = {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"}
    if backend == "local":
        default = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": media_root},
        }
    elif backend == "s3":
        if not env_str("AWS_STORAGE_BUCKET_NAME"):
            # django-storages starts without one, then fails at the first file written.
            raise ImproperlyConfiguredEnv(
                "EVALHUB_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (and the bucket's "
                "credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance role)")
        default = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
                "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
                "region_name": env_str("AWS_S3_REGION_NAME"),
                "file_overwrite": False,
                "querystring_auth": True,
            },
        }
    else:
        raise ImproperlyConfiguredEnv(f"EVALHUB_STORAGE={backend!r}: expected 'local' or 's3'")
    return {"default": default, "staticfiles": staticfiles}


MEDIA_DELIVERY_MODES = ("stream", "accel", "signed")


@dataclass(frozen=True)
class MediaDelivery:
    """How the access-checked media view hands over the bytes (evalhub/core/media.py).

    - ``stream``: Django streams the file itself (embedded default, development; any storage).
    - ``accel``: Django answers an empty response with ``X-Accel-Redirect: <accel_prefix><name>``
      and nginx sends the file from an ``internal`` location (docker-compose, deploy/nginx.conf).
    - ``signed``: Django redirects to a URL of the S3 bucket signed for ``signed_url_seconds``.
    """

    mode: str
    accel_prefix: str
    signed_url_seconds: int


def media_delivery_from_env() -> MediaDelivery:
    """``EVALHUB_MEDIA_DELIVERY`` (default ``signed`` with S3 storage, else ``stream``),
    ``EVALHUB_MEDIA_ACCEL_PREFIX`` (default ``/_protected_media/``) and
    ``EVALHUB_MEDIA_SIGNED_URL_SECONDS`` (default 60), checked together."""
    storage = (env_str("EVALHUB_STORAGE") or "local").lower()
    mode = (env_str("EVALHUB_MEDIA_DELIVERY") or ("signed" if storage == "s3" else "stream"))
    mode = mode.lower()
    if mode not in MEDIA_DELIVERY_MODES:
        raise ImproperlyConfiguredEnv(
            f"EVALHUB_MEDIA_DELIVERY={mode!r}: expected one of {', '.join(MEDIA_DELIVERY_MODES)}")
    if mode == "signed" and storage != "s3":
        raise ImproperlyConfiguredEnv(
            "EVALHUB_MEDIA_DELIVERY=signed needs EVALHUB_STORAGE=s3 (only object storage "
            "signs URLs)")
    if mode == "accel" and storage != "local":
        # The nginx location aliases MEDIA_ROOT; it cannot read a bucket.
        raise ImproperlyConfiguredEnv(
            "EVALHUB_MEDIA_DELIVERY=accel needs EVALHUB_STORAGE=local (nginx serves MEDIA_ROOT)")
    prefix = env_str("EVALHUB_MEDIA_ACCEL_PREFIX") or "/_protected_media/"
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ImproperlyConfiguredEnv(
            f"EVALHUB_MEDIA_ACCEL_PREFIX={prefix!r} must start and end with '/'")
    seconds = env_int("EVALHUB_MEDIA_SIGNED_URL_SECONDS", 60)
    if seconds <= 0:
        raise ImproperlyConfiguredEnv("EVALHUB_MEDIA_SIGNED_URL_SECONDS must be positive")
    return MediaDelivery(mode=mode, accel_prefix=prefix, signed_url_seconds=seconds)
