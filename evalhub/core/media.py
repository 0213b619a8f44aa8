"""Hand a stored file to the browser once a view has decided the caller may have it.

The view checks access (evalhub/blobs/views.py for media, campaigns/page/views.py for tiles);
this module only delivers, in the way ``EVALHUB_MEDIA_DELIVERY`` says (config/storage.py):

- ``stream``: Django streams the file from the storage (embedded default, development);
- ``accel``: an empty response with ``X-Accel-Redirect: <EVALHUB_MEDIA_ACCEL_PREFIX><name>``;
  nginx serves the file from its ``internal`` location (deploy/nginx.conf), which browsers
  cannot request directly;
- ``signed``: a redirect to the S3 object, signed for ``EVALHUB_MEDIA_SIGNED_URL_SECONDS``
  (django-storages' ``url(name, expire=...)``), telling the bucket to answer with our
  ``Cache-Control``. Only for names that reveal nothing (``redirect_ok``): a tile's storage
  name holds the content hash, and a display derivative's or video rendition's storage name
  is the blob's internal token, the same in every project (blobs/names.py), which would let a
  member of two projects match the same bytes across them; so tiles and derivatives are
  streamed instead (``redirect_ok=False``), and only originals and previews (owners and
  scientists, whose URLs already name the content hash) are redirected.

No response carries ``Last-Modified`` or a file-time ``ETag``: a file's time says when its
run was imported or generated, which would group anonymous images by run.

Byte ranges (a video rendition's, blobs/views.py) read only their span from the storage
(:func:`open_stored_span`), from an S3 bucket too.
"""

from __future__ import annotations

import io
import sys
from typing import Any, BinaryIO
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect


def file_response(handle: Any, *, content_type: str) -> FileResponse:
    """Stream an open storage file. Without ``Content-Disposition``: Django would name the
    file after its storage name, and a derivative's storage name is shared by every project
    holding the same bytes, so it must never reach a browser (blobs/names.py)."""
    response = FileResponse(handle, content_type=content_type)
    response.headers.pop("Content-Disposition", None)
    return response


def open_stored_span(name: str, start: int, end: int) -> BinaryIO:
    """Storage file ``name`` open for reading its bytes ``start`` to ``end`` (0-based, both
    included, ``end`` below the file's size), positioned at ``start``; the caller reads at most
    ``end - start + 1`` bytes and closes it. Raises ``FileNotFoundError`` if there is no file.

    On django-storages' S3 storage only that span leaves the bucket (one GetObject with a
    ``Range`` header): its ``open()`` downloads the whole object before it can seek."""
    # Where the storage is an S3Storage its module is loaded; importing it otherwise would load
    # boto3 into a filesystem deployment for nothing.
    s3 = sys.modules.get("storages.backends.s3")
    if s3 is not None and isinstance(default_storage, s3.S3Storage):
        return _s3_span(default_storage, name, start, end)
    handle = default_storage.open(name, "rb")
    handle.seek(start)
    return handle


def _s3_span(storage: Any, name: str, start: int, end: int) -> BinaryIO:
    from botocore.exceptions import ClientError
    from s3transfer.constants import ALLOWED_DOWNLOAD_ARGS
    from storages.utils import clean_name

    if end < start:  # an empty object: no Range names it, and there is nothing to read
        return io.BytesIO()
    name = clean_name(name)
    # The object's key and download parameters (customer encryption keys) as S3File.open has.
    params = {key: value for key, value in storage.get_object_parameters(name).items()
              if key in ALLOWED_DOWNLOAD_ARGS}
    obj = storage.bucket.Object(storage._normalize_name(name))
    try:
        return obj.get(Range=f"bytes={start}-{end}", **params)["Body"]
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            raise FileNotFoundError(name) from exc
        raise


def stored_file_response(name: str, *, content_type: str, cache_control: str,
                         redirect_ok: bool = True) -> HttpResponse:
    """A response that delivers storage file ``name`` (already access-checked)."""
    mode = settings.EVALHUB_MEDIA_DELIVERY
    if mode == "accel":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.EVALHUB_MEDIA_ACCEL_PREFIX + quote(name)
    elif mode == "signed" and redirect_ok:
        url = default_storage.url(
            name, parameters={"ResponseCacheControl": cache_control,
                              "ResponseContentType": content_type},
            expire=settings.EVALHUB_MEDIA_SIGNED_URL_SECONDS)
        response = HttpResponseRedirect(url)
        # The signature expires: the browser must ask again rather than reuse the redirect.
        response["Cache-Control"] = "private, no-store"
        return response
    else:
        try:
            handle = default_storage.open(name, "rb")
        except FileNotFoundError as exc:
            raise Http404("No such file.") from exc
        response = file_response(handle, content_type=content_type)
    response["Cache-Control"] = cache_control
    return response
