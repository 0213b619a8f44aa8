"""HTML pages: the annotator's rating page, and the image tiles it zooms into."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import Exists, OuterRef
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from evalhub.blobs.models import ImageBlob
from evalhub.blobs.tiles import blob_build_tiles, dzi_path, needs_tiles, tile_path
from evalhub.campaigns.models import Campaign
from evalhub.campaigns.serving.payloads import criteria_payload
from evalhub.projects.models import Membership
from evalhub.projects.selectors import role_in_project
from evalhub.prompts.models import Prompt
from evalhub.runs.models import Image

# Tiles are content-addressed, so a browser may keep them as long as it likes; "private"
# because only members may see them (no shared proxy cache).
TILE_CACHE_CONTROL = "private, max-age=31536000, immutable"
# A page opens hundreds of tiles; remember the membership answer briefly instead of asking the
# database for each one. Removing a member takes effect for tiles within this many seconds.
ACCESS_CACHE_SECONDS = 120


@login_required
@ensure_csrf_cookie
def rate_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if role_in_project(user=request.user, project_id=campaign.project_id) is None:
        raise Http404("No such campaign.")
    return render(request, "campaigns/rate.html", {
        "campaign": campaign,
        "criteria": criteria_payload(campaign),
        # (side, label, key): the source pane shows only for editing tasks.
        "panes": [("source", "Source", ""), ("left", "Left", "1"), ("right", "Right", "2")],
        "config": {
            "campaign": campaign.pk,
            "user": request.user.pk,
            "api": f"/api/v1/rate/{campaign.pk}/",
            "criteria": criteria_payload(campaign),
            "osd": static("vendor/openseadragon/"),
        },
    })


def _blob_visible_to(user, sha256: str) -> bool:
    """Is the blob an image, or an editing source, in a project the user belongs to?"""
    key = f"evalhub:tiles-access:{user.pk}:{sha256}"
    allowed = cache.get(key)
    if allowed is None:
        projects = Membership.objects.filter(user=user).values("project_id")
        in_runs = Image.objects.filter(blob=OuterRef("pk"), run__project_id__in=projects)
        as_source = Prompt.objects.filter(source_image=OuterRef("pk"),
                                          prompt_set__project_id__in=projects)
        allowed = ImageBlob.objects.filter(sha256=sha256).filter(
            Exists(in_runs) | Exists(as_source)).exists()
        cache.set(key, allowed, ACCESS_CACHE_SECONDS)
    return allowed


def _visible_blob_sha(request: HttpRequest, sha256: str) -> str:
    # 404 (not 403 or a login redirect) for anonymous users and outsiders alike: a tile
    # request must not reveal which images exist.
    if not request.user.is_authenticated or not _blob_visible_to(request.user, sha256):
        raise Http404("No such image.")
    return sha256


def _ensure_pyramid(sha256: str) -> None:
    """Build on first request when no worker did it beforehand (slow for 16K images)."""
    if default_storage.exists(dzi_path(sha256)):
        return
    blob = ImageBlob.objects.filter(sha256=sha256).first()
    if blob is None or not needs_tiles(blob):
        raise Http404("This image has no tiles.")
    blob_build_tiles(blob)


def _stored(path: str, content_type: str) -> FileResponse:
    try:
        handle = default_storage.open(path, "rb")
    except FileNotFoundError as exc:
        raise Http404("No such tile.") from exc
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = TILE_CACHE_CONTROL
    return response


@require_GET
def tile_descriptor(request: HttpRequest, sha256: str) -> FileResponse:
    """The DZI XML of a large image; builds the pyramid if nobody has yet."""
    _ensure_pyramid(_visible_blob_sha(request, sha256))
    return _stored(dzi_path(sha256), "application/xml")


@require_GET
def tile_image(request: HttpRequest, sha256: str, level: str, col: str, row: str,
               ext: str) -> FileResponse:
    """One tile. The descriptor is always fetched first, so a missing tile is a plain 404."""
    _visible_blob_sha(request, sha256)
    content_type = "image/jpeg" if ext == "jpeg" else "image/webp"
    return _stored(tile_path(sha256, int(level), int(col), int(row), ext), content_type)
