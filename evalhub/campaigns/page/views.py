"""HTML pages: the annotator's rating page (with its first task), and the image tiles it zooms
into.

Tile requests (every one of a deep zoom) are answered by one of two paths with the same
outcome for anyone the access rule admits:

- granted: the rating payload's pyramids carry the annotator's tile grant (``?g=``,
  blobs/tile_grants.py); the session's user (Django's check: password hash, active) and the
  signature decide, and the pyramid's storage name comes from a per-process map of per-project
  name to content hash: no blob or membership query;
- otherwise (no grant, an expired, forged or other user's grant, the gallery, a retry through
  the descriptor): the full check of blobs/access.py, 404 for anyone it does not admit.

The URL's token is the image's per-project name (blobs/names.py ``project_display_name``): it
reads back to (project, blob) without a query, and only that project's members, for an image
of that project, receive the tiles; the blob's shared internal token answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET
from PIL import UnidentifiedImageError

from evalhub.blobs.access import project_blob_access
from evalhub.blobs.models import ImageBlob
from evalhub.blobs.names import resolve_display_name
from evalhub.blobs.tile_grants import grant_admits
from evalhub.blobs.tiles import (
    Pyramid,
    assemble_whole_level,
    dzi_path,
    needs_tiles,
    tile_path,
    tiles_ready_or_requested,
    whole_levels_requested,
    whole_path,
)
from evalhub.campaigns.models import Campaign, TaskKind
from evalhub.campaigns.selectors import (
    NoSuchCampaign,
    NotAssigned,
    campaign_for_rater,
    campaign_medium,
    rating_panes,
)
from evalhub.campaigns.serving.payloads import criteria_payload
from evalhub.campaigns.serving.rating import rate_next, refusal_payload
from evalhub.core.errors import EvalHubError
from evalhub.core.media import stored_file_response

# Tiles are content-addressed, so a browser may keep them as long as it likes; "private"
# because only members may see them (no shared proxy cache). Who may see them, and for how
# long the answer is cached, is blobs/access.py (shared with media URLs).
TILE_CACHE_CONTROL = "private, max-age=31536000, immutable"
TILES_RETRY_AFTER_SECONDS = 5


def _rate_modules() -> tuple[str, ...]:
    """The rating page's ES modules as static paths (js/rate.js and everything under js/rate/,
    which only it imports): the page preloads them all (modulepreload), so the browser fetches
    them in parallel instead of discovering them one import after another."""
    folder = finders.find("js/rate")
    names = sorted(path.name for path in Path(folder).glob("*.js")) if folder else []
    return ("js/rate.js", *(f"js/rate/{name}" for name in names))


RATE_MODULES = _rate_modules()


def _first_task(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    """What the page shows first, in the page itself: exactly what the API's next/ answers
    (serving/rating.py ``rate_next``, the one lease service; a lease the annotator holds comes
    back before a new one is taken), so the first images are asked for without an API round
    trip. A campaign that is not open answers ``done`` with the reason, as next/'s 400 does."""
    try:
        return rate_next(annotator=request.user, campaign_id=campaign.pk)
    except EvalHubError as exc:
        return refusal_payload(exc)


def _has_tiles(task: dict[str, Any]) -> bool:
    images = [task.get("source_image"), task.get("left"), task.get("right"),
              *task.get("images", ())]
    return any(image and image.get("tiles") and not image.get("video") for image in images)


@login_required
@ensure_csrf_cookie
def rate_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The annotator's rating page, pairs or best of K (static/js/rate.js), with its first task."""
    try:
        campaign = campaign_for_rater(user=request.user, campaign_id=campaign_id)
    except NoSuchCampaign as exc:
        raise Http404("No such campaign.") from exc
    except NotAssigned as exc:  # the 403 page says why
        raise PermissionDenied(exc.message) from exc
    grid = campaign.task_kind == TaskKind.BEST_OF_K
    medium = campaign_medium(campaign=campaign)
    criteria = criteria_payload(campaign, medium)
    first = _first_task(request, campaign)
    response = render(request, "campaigns/rate.html", {
        "campaign": campaign,
        "grid": grid,
        "medium": medium,
        "criteria": criteria,
        "panes": rating_panes(campaign=campaign, medium=medium),
        "modules": RATE_MODULES,
        "preload_tile_viewer": _has_tiles(first),
        "first": first,
        "config": {
            "campaign": campaign.pk,
            "user": request.user.pk,
            "api": f"/api/v1/rate/{campaign.pk}/",
            "kind": campaign.task_kind,
            "k": campaign.k,
            "medium": medium,
            "rank_all": grid and campaign.rank_all,
            "criteria": criteria,
            "osd": static("vendor/openseadragon/"),
            "input_guard_ms": settings.EVALHUB_RATE_INPUT_GUARD_MS,
        },
    })
    # The page holds a lease: never from a cache (a back button shows it afresh).
    response["Cache-Control"] = "private, no-store"
    return response


@dataclass(frozen=True)
class _Known:
    """What a tile request needs of a blob; never changes for a per-project name."""

    pk: int
    sha256: str
    width: int
    height: int


_KNOWN: dict[str, _Known] = {}  # per-project name -> blob facts (per process; module doc)
_KNOWN_KEPT = 20_000  # ~200 bytes each
_WHOLE_STORED: set[str] = set()  # whole-level storage names seen to exist (per process)
_WHOLE_STORED_KEPT = 20_000


def _remember(token: str, blob: ImageBlob) -> _Known:
    known = _Known(blob.pk, blob.sha256, blob.width, blob.height)
    if len(_KNOWN) >= _KNOWN_KEPT:
        _KNOWN.clear()
    _KNOWN[token] = known
    return known


def _granted(request: HttpRequest, token: str) -> _Known | None:
    """The blob of ``token`` if the request carries a valid tile grant for the session's
    user (module doc), else None. The user is Django's (``request.user``: the session's
    password hash checked, inactive users refused, a session invalidated by a password change
    flushed), one prepared query; the blob's facts come from a query only the first time this
    process sees the token."""
    grant = request.GET.get("g")
    if not grant:
        return None
    user = request.user
    if not user.is_authenticated or not grant_admits(grant, token, user.pk):
        return None
    known = _KNOWN.get(token)
    if known is None:
        resolved = resolve_display_name(token)
        if resolved is None:  # a grant is only signed for a name the server gave
            raise Http404("No such image.")
        blob = ImageBlob.objects.filter(pk=resolved[1]).only(
            "id", "sha256", "width", "height").first()
        if blob is None:
            raise Http404("No such image.")
        known = _remember(token, blob)
    return known


def _tile_blob(request: HttpRequest, token: str) -> _Known:
    """The blob whose tiles the request asks for: by grant, else by the full access check."""
    known = _granted(request, token)
    if known is None:
        known = _remember(token, _visible_blob(request, token))
    return known


def _visible_blob(request: HttpRequest, token: str) -> ImageBlob:
    """The blob whose per-project name is ``token``, if the caller may see its pixels in that
    project (blobs/access.py ``project_blob_access``, the rule media URLs follow too).

    404 (not 403 or a login redirect) for anonymous users, outsiders and members of other
    projects alike: a tile request must not reveal which images exist. The URL names the
    per-project name, never the content hash nor the blob's internal token (blobs/names.py);
    the pyramid's storage names stay internal.
    """
    resolved = resolve_display_name(token)
    if resolved is None:
        raise Http404("No such image.")
    project_id, blob_id = resolved
    blob = ImageBlob.objects.filter(pk=blob_id).only(
        "id", "sha256", "file", "width", "height", "tiles_format").first()
    if blob is None or not project_blob_access(request.user, project_id, blob.pk).display:
        raise Http404("No such image.")
    return blob


def _preparing() -> HttpResponse:
    """A pyramid not built yet (web processes never build one: blobs/tiles.py): 503 with
    Retry-After, as for a display derivative still being made (blobs/views.py)."""
    response = JsonResponse({"detail": "This image is still being prepared; try again in a "
                                       "few seconds.", "preparing": True}, status=503)
    response["Retry-After"] = str(TILES_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "private, no-store"
    return response


def _stored(path: str, content_type: str) -> HttpResponse:
    # Streamed or handed to nginx, never redirected to the storage: the pyramid's storage
    # names hold the content hash.
    return stored_file_response(path, content_type=content_type,
                                cache_control=TILE_CACHE_CONTROL, redirect_ok=False)


@require_GET
def tile_descriptor(request: HttpRequest, token: str) -> HttpResponse:
    """The DZI XML of a large image, once a worker has built its pyramid."""
    blob = _visible_blob(request, token)
    if not needs_tiles(blob):
        raise Http404("This image has no tiles.")
    if not tiles_ready_or_requested(blob):  # queues the build; never builds here
        return _preparing()
    return _stored(dzi_path(blob.sha256), "application/xml")


def _content_type(ext: str) -> str:
    return "image/jpeg" if ext == "jpeg" else "image/webp"


@require_GET
def tile_image(request: HttpRequest, token: str, level: str, col: str, row: str,
               ext: str) -> HttpResponse:
    """One tile (only once the pyramid is built: the page gets tiles only then), so a
    missing tile is a plain 404."""
    known = _tile_blob(request, token)
    return _stored(tile_path(known.sha256, int(level), int(col), int(row), ext),
                   _content_type(ext))


@require_GET
def tile_whole(request: HttpRequest, token: str, level: str, ext: str) -> HttpResponse:
    """A whole level of the pyramid as one picture (blobs/tiles.py ``whole_levels``). A
    pyramid built before they were stored gets them written by a worker (queued here, and by
    ``manage.py backfill_whole_levels``); until then this request's level is assembled from
    its tiles in memory (never written here, never from the original)."""
    known = _tile_blob(request, token)
    pyramid = Pyramid(known.width, known.height)
    if int(level) not in pyramid.whole_levels():
        raise Http404("No such level.")
    name = whole_path(known.sha256, int(level), ext)
    if name in _WHOLE_STORED or default_storage.exists(name):
        if len(_WHOLE_STORED) >= _WHOLE_STORED_KEPT:
            _WHOLE_STORED.clear()
        _WHOLE_STORED.add(name)
        return _stored(name, _content_type(ext))
    try:
        data = assemble_whole_level(known.sha256, pyramid, int(level), ext)
    except (OSError, UnidentifiedImageError) as exc:  # FileNotFoundError: a tile is missing
        raise Http404("No such level.") from exc
    whole_levels_requested(known.pk)  # written once by a worker, then served from storage
    response = HttpResponse(data, content_type=_content_type(ext))
    response["Cache-Control"] = TILE_CACHE_CONTROL
    return response
