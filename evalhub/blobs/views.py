"""The one way media leave EvalHub: ``MEDIA_URL`` + path, access-checked per request.

Paths (under ``MEDIA_URL``, ``/media/`` by default):

- ``display/<name>.webp``: a blob's display derivative (display.py) under its *per-project*
  name (names.py ``project_display_name``), for every role of that project if the image
  belongs to it (access.py ``project_blob_access``); this is the URL the rating API gives
  annotators. Its extension and ``Content-Type`` (``image/webp``) are the same for every image,
  whatever the original's format (display.py: one encoding); another extension is 404. A
  member of another project holding the same bytes gets 404 here, and the blob's shared
  internal name (``display_token``) answers 404 to everybody.
- ``blobs/.../<sha256>.<ext>``: the original as imported; owners and scientists only.
- ``previews/.../<sha256>.webp``: the dashboard preview; owners and scientists only, of a
  project where it is shown (runs/previews.py: not before that project's own preview task for
  the image has run, even if the preview was made earlier for another project).
- ``video/<name>.webm`` and ``video/<name>-strip.webp``: a video's rendition and thumbnail
  strip (video_display.py) under its per-project name (``project_video_name``), for every role
  of that project if the video belongs to it, exactly as image derivatives; never built in a
  web request (503 with ``Retry-After`` until the worker has).
- ``videos/.../<sha256>.<ext>``: the original video as imported; owners and scientists only.

Anything else, an unknown name, an anonymous caller or a caller without the role: 404, the
same answer in every case, so a URL reveals nothing about what exists. The bytes are then
handed over by ``core.media.stored_file_response`` (stream, nginx ``X-Accel-Redirect`` or a
signed S3 URL). Derivatives are never redirected to a signed S3 URL: their storage names are
shared by every project (names.py), so in the ``signed`` mode they are streamed by Django.
A derivative that the worker has not written yet, or that an earlier rule wrote (display.py
``DISPLAY_RULE``), is written here when the image is small (``DISPLAY_SYNC_MAX_PIXELS``); a
larger one is answered 503 with ``Retry-After`` and its writing queued (at most once a minute
per blob), because the web process must not spend seconds re-encoding a huge file (a
campaign is served only once those of its images are current: campaigns/building/images.py).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.urls import reverse
from django.views.decorators.http import require_safe
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from evalhub.blobs.access import (
    blob_access,
    blob_preview_access,
    project_blob_access,
    project_video_access,
    video_access,
)
from evalhub.blobs.display import (
    DISPLAY,
    blob_make_display,
    display_by_worker,
    display_is_current,
    display_requested,
)
from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.names import (
    project_display_name,
    project_video_name,
    resolve_display_name,
    resolve_video_name,
    video_path,
)
from evalhub.blobs.video_display import (
    RENDITION_CONTENT_TYPE,
    RENDITION_SUFFIX,
    STRIP_CONTENT_TYPE,
)
from evalhub.core.media import file_response, open_stored_span, stored_file_response

# Derivatives and originals never change under their name (content-addressed), so the caller's
# browser may keep them a day; "private": no shared cache may serve them to someone else.
MEDIA_CACHE_CONTROL = "private, max-age=86400"
DISPLAY_RETRY_AFTER_SECONDS = 10

_DISPLAY = re.compile(rf"display/(?P<name>[0-9a-f]{{64}})\.{DISPLAY.extension}")
_ORIGINAL = re.compile(r"blobs/(?:[^/]+/)*(?P<sha>[0-9a-f]{64})[^/]*")
_PREVIEW = re.compile(r"previews/(?:[^/]+/)*(?P<sha>[0-9a-f]{64})[^/]*")
_VIDEO = re.compile(r"video/(?P<name>[0-9a-f]{64})(?P<suffix>\.webm|-strip\.webp)")
_VIDEO_ORIGINAL = re.compile(r"videos/(?:[^/]+/)*(?P<sha>[0-9a-f]{64})[^/]*")


def display_url(blob: ImageBlob, project_id: int) -> str:
    """The derivative's URL in project ``project_id`` (the page's ``url`` for an image): a
    plain path under MEDIA_URL with the per-project name (names.py), served by
    :func:`media_file` to the members of that project whatever the storage. No query."""
    name = project_display_name(project_id, blob.pk)
    return reverse("media", kwargs={"path": f"display/{name}.{DISPLAY.extension}"})


def video_url(video: VideoBlob, project_id: int, suffix: str = RENDITION_SUFFIX) -> str:
    """The rendition's URL in project ``project_id`` (``suffix`` ``-strip.webp``: the
    thumbnail strip's), served by :func:`media_file` to the members of that project."""
    name = project_video_name(project_id, video.pk)
    return reverse("media", kwargs={"path": f"video/{name}{suffix}"})


def _not_found() -> Http404:
    return Http404("No such file.")


def _caller(request: HttpRequest):
    """The signed-in user, or the user of an API token (scripts download images too)."""
    if request.user.is_authenticated:
        return request.user
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "token" and key.strip():
        try:
            return TokenAuthentication().authenticate_credentials(key.strip())[0]
        except AuthenticationFailed:
            pass
    return request.user


def _display(request: HttpRequest, name: str) -> HttpResponse:
    resolved = resolve_display_name(name)  # no query: old global tokens and forgeries fail
    if resolved is None:
        raise _not_found()
    project_id, blob_id = resolved
    blob = ImageBlob.objects.filter(pk=blob_id).first()
    if blob is None:
        raise _not_found()
    if not project_blob_access(_caller(request), project_id, blob.pk).display:
        raise _not_found()
    if not display_is_current(blob):  # missing, or written by an earlier rule
        if display_by_worker(blob):
            display_requested(blob.pk)
            response = HttpResponse(
                "This image is still being prepared; try again in a few seconds.\n",
                status=503, content_type="text/plain")
            response["Retry-After"] = str(DISPLAY_RETRY_AFTER_SECONDS)
            response["Cache-Control"] = "private, no-store"
            return response
        blob_make_display(blob)
    # Never redirected to object storage: the stored name is the same in every project.
    return stored_file_response(blob.display.name, content_type=DISPLAY.content_type,
                                cache_control=MEDIA_CACHE_CONTROL, redirect_ok=False)


def _original(request: HttpRequest, path: str, sha: str, field: str) -> HttpResponse:
    blob = ImageBlob.objects.filter(sha256=sha).first()
    if blob is None or getattr(blob, field).name != path:
        raise _not_found()
    # A preview only where it is shown: else its mere existence would be news (access.py).
    access = blob_preview_access if field == "preview" else blob_access
    if not access(_caller(request), blob.pk).original:
        raise _not_found()
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return stored_file_response(path, content_type=content_type,
                                cache_control=MEDIA_CACHE_CONTROL)


def _preparing() -> HttpResponse:
    response = HttpResponse("This video is still being prepared; try again in a few seconds.\n",
                            status=503, content_type="text/plain")
    response["Retry-After"] = str(DISPLAY_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "private, no-store"
    return response


def _video(request: HttpRequest, name: str, suffix: str) -> HttpResponse:
    resolved = resolve_video_name(name)
    if resolved is None:
        raise _not_found()
    project_id, video_id = resolved
    video = VideoBlob.objects.filter(pk=video_id).first()
    if video is None or not project_video_access(_caller(request), project_id,
                                                 video.pk).display:
        raise _not_found()
    field = video.rendition if suffix == RENDITION_SUFFIX else video.thumbnails
    if not field or field.name != video_path(video.rendition_token, suffix):
        return _preparing()  # the worker writes it (never in a web request: seconds of work)
    # nginx answers ranges itself; Django streams them otherwise, in the signed S3 mode too:
    # a derivative's stored name is shared by every project, so it is never redirected to.
    if suffix == RENDITION_SUFFIX and settings.EVALHUB_MEDIA_DELIVERY != "accel":
        return _byte_range_response(request, field.name)
    content_type = RENDITION_CONTENT_TYPE if suffix == RENDITION_SUFFIX else STRIP_CONTENT_TYPE
    return stored_file_response(field.name, content_type=content_type,
                                cache_control=MEDIA_CACHE_CONTROL, redirect_ok=False)


_RANGE = re.compile(r"bytes=(?P<start>\d*)-(?P<end>\d*)")


def _byte_range_response(request: HttpRequest, name: str) -> HttpResponse:
    """Stream a rendition with HTTP range support (one range): a <video> element seeks by
    asking for byte ranges, and Django's FileResponse answers whole files only. Only the span
    asked for is read from the storage (``open_stored_span``; on S3 a ranged GetObject).
    nginx (``accel``) answers ranges itself."""
    try:
        size = default_storage.size(name)
    except FileNotFoundError as exc:
        raise _not_found() from exc
    match = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    ranged = bool(match and (match["start"] or match["end"]))
    start, end = 0, size - 1
    if ranged:
        if match["start"]:
            start = int(match["start"])
            end = min(int(match["end"]), size - 1) if match["end"] else size - 1
        else:  # "bytes=-N": the last N bytes
            start = max(0, size - int(match["end"]))
        if start > end or start >= size:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
    try:
        handle = open_stored_span(name, start, end)
    except FileNotFoundError as exc:  # deleted since its size was read
        raise _not_found() from exc
    if ranged:
        response = StreamingHttpResponse(_Span(handle, end - start + 1), status=206,
                                         content_type=RENDITION_CONTENT_TYPE)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    else:
        response = file_response(handle, content_type=RENDITION_CONTENT_TYPE)
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = MEDIA_CACHE_CONTROL
    return response


class _Span:
    """The next ``length`` bytes of an open file, in chunks. Closable, as Django closes a
    response's content when it is done, also one never read (HEAD): the file, or the S3 body
    holding a pooled connection, is released then."""

    def __init__(self, handle: BinaryIO, length: int, chunk: int = 1 << 16) -> None:
        self.handle, self.length, self.chunk = handle, length, chunk

    def __iter__(self) -> Iterator[bytes]:
        length = self.length
        while length > 0:
            data = self.handle.read(min(self.chunk, length))
            if not data:
                return
            length -= len(data)
            yield data

    def close(self) -> None:
        self.handle.close()


def _video_original(request: HttpRequest, path: str, sha: str) -> HttpResponse:
    video = VideoBlob.objects.filter(sha256=sha).first()
    if video is None or video.file.name != path:
        raise _not_found()
    if not video_access(_caller(request), video.pk).original:
        raise _not_found()
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return stored_file_response(path, content_type=content_type,
                                cache_control=MEDIA_CACHE_CONTROL)


@require_safe
def media_file(request: HttpRequest, path: str) -> HttpResponse:
    """Serve one media path to a caller allowed to have it (see the module doc)."""
    if match := _DISPLAY.fullmatch(path):
        return _display(request, match["name"])
    if match := _ORIGINAL.fullmatch(path):
        return _original(request, path, match["sha"], "file")
    if match := _PREVIEW.fullmatch(path):
        return _original(request, path, match["sha"], "preview")
    if match := _VIDEO.fullmatch(path):
        return _video(request, match["name"], match["suffix"])
    if match := _VIDEO_ORIGINAL.fullmatch(path):
        return _video_original(request, path, match["sha"])
    raise _not_found()
