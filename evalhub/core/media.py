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
"""

from __future__ import annotations

from typing import Any
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
