"""Serve MEDIA_ROOT from Django (embedded default and development only)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.static import serve


def serve_media(request: HttpRequest, path: str) -> HttpResponse:
    # MEDIA_ROOT is read per request (not frozen into the URLconf) so tests and the
    # embedded runner can point it elsewhere after start-up.
    return serve(request, path, document_root=settings.MEDIA_ROOT)
