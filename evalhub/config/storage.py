"""File storage configuration: local filesystem by default, S3-compatible when configured."""

from __future__ import annotations

from typing import Any

from evalhub.config.env import env_str


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
        raise ValueError(f"EVALHUB_STORAGE={backend!r}: expected 'local' or 's3'")
    return {"default": default, "staticfiles": staticfiles}
