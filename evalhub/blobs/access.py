"""Who may receive which bytes of an image: one rule for media URLs and rating-page tiles.

A user's roles for a blob are their roles in the projects where the blob is

- an image of a run, or the source image of an editing prompt: every role;
- an image of a reference set: owners and scientists only (annotators never rate references).

What each role receives (docs/security.md):

- the display derivative and the tile pyramid (pixels only, opaque names): any role;
- the original file as imported and its preview: owners and scientists, never annotators, so
  nothing a model's writer embedded in a file reaches the people judging it blind; the preview
  only in the projects where it is shown (:func:`blob_preview_access`).

Superusers, who read every row in Django's admin anyway, receive every blob's display
derivative (the admin's thumbnails), as an annotator would: pixels only, never the original.

Videos follow the same rule (:func:`video_access`): a user's roles for a video are their roles
in the projects where it is a run's output or the source video of an editing prompt; any role
receives the rendition and the thumbnail strip (pixels only, opaque names), owners and
scientists also the original file.

Display derivatives, tiles and video renditions are addressed by *per-project* names
(blobs/names.py): a name says which project it was handed out for, and only that project's
roles count for it (:func:`project_blob_access`, :func:`project_video_access`), so a member of
another project that holds the same bytes gets 404 for it, and reaches the file only under the
name of their own project. Originals and previews (owners and scientists) keep the rule over
all of a user's projects (:func:`blob_access`).

Anonymous users and users without a role get 404 everywhere, so a URL does not reveal whether
an image exists. The answer is cached per (user, blob), or (user, project, blob), for
``ACCESS_CACHE_SECONDS``: a rating page opens hundreds of tiles. Each cached answer carries the
user's *access generation* (:func:`access_generation_renew`), a token that every creation,
change or deletion of one of the user's memberships replaces (evalhub/projects/receivers.py),
and is read together with it in one ``cache.get_many`` round trip: an answer from an older
generation is recomputed, so adding a member, changing a role and removing a member take effect
on the next request. (Tile grants, ``?g=`` in a rating page's tile URLs, skip this rule and
keep their own expiry of 60 to 120 s: blobs/tile_grants.py.)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q

from evalhub.projects.models import Membership, Role
from evalhub.prompts.models import Prompt
from evalhub.runs.models import Image, ReferenceSet

ACCESS_CACHE_SECONDS = 120
# A generation outlives the answers it guards; if it is evicted or expires anyway, the next
# read starts a new one, and every answer cached before is recomputed (never wrongly kept).
ACCESS_GENERATION_SECONDS = 24 * 3600
ORIGINAL_ROLES = frozenset({Role.OWNER.value, Role.SCIENTIST.value})


@dataclass(frozen=True)
class BlobAccess:
    """The roles a user holds for one blob, and what they let the user receive."""

    roles: frozenset[str]

    @property
    def display(self) -> bool:
        """May receive the derivative and the tiles (any role)."""
        return bool(self.roles)

    @property
    def original(self) -> bool:
        """May receive the imported file and its preview (owners and scientists)."""
        return bool(self.roles & ORIGINAL_ROLES)


NO_ACCESS = BlobAccess(frozenset())
SUPERUSER_ACCESS = BlobAccess(frozenset({Role.ANNOTATOR.value}))  # display derivative only


def _image_in_project(blob_id: int, project: Any) -> Q:
    """Image blob ``blob_id`` belongs to ``project`` (a project id, or the outer membership's
    ``OuterRef("project_id")``): an output of one of its runs or a prompt's source, for any
    role; an image of one of its reference sets, for owners and scientists."""
    in_runs = Image.objects.filter(blob_id=blob_id, run__project_id=project)
    as_source = Prompt.objects.filter(source_image_id=blob_id, prompt_set__project_id=project)
    in_references = ReferenceSet.objects.filter(images=blob_id, project_id=project)
    return (Q(Exists(in_runs)) | Q(Exists(as_source))
            | Q(Exists(in_references), role__in=ORIGINAL_ROLES))


def _video_in_project(video_id: int, project: Any) -> Q:
    """:func:`_image_in_project` for a video: an output of one of the project's runs or a
    prompt's source."""
    in_runs = Image.objects.filter(video_id=video_id, run__project_id=project)
    as_source = Prompt.objects.filter(source_video_id=video_id, prompt_set__project_id=project)
    return Q(Exists(in_runs)) | Q(Exists(as_source))


def _roles(user_id: int, belongs: Q, project_id: int | None = None) -> frozenset[str]:
    """The user's roles in the projects (or the one project) the file ``belongs`` to."""
    memberships = Membership.objects.filter(user_id=user_id)
    if project_id is not None:
        memberships = memberships.filter(project_id=project_id)
    return frozenset(memberships.filter(belongs).values_list("role", flat=True))


def _generation_key(user_id: int) -> str:
    return f"evalhub:access-generation:{user_id}"


def access_generation_renew(user_id: int) -> None:
    """Make every cached access answer of user ``user_id`` stale: called whenever one of
    their memberships is created, changed or deleted (evalhub/projects/receivers.py). The
    generation is a random token, never a counter: a token lost to eviction and started
    again cannot equal one that older answers carry."""
    cache.set(_generation_key(user_id), secrets.token_hex(8), ACCESS_GENERATION_SECONDS)


def _current_generation(user_id: int) -> str:
    """A new generation for a user who has none in the cache (first use, or evicted)."""
    token = secrets.token_hex(8)
    if cache.add(_generation_key(user_id), token, ACCESS_GENERATION_SECONDS):
        return token
    # Another request started one first: use theirs (or, gone again, ours, never stored, so
    # what this request caches is recomputed next time).
    return cache.get(_generation_key(user_id), token)


def _cached_access(user: AbstractBaseUser | AnonymousUser, key: str,
                   roles_of: Callable[[int], frozenset[str]],
                   remember_none: bool = True) -> BlobAccess:
    """The access ``roles_of(user id)`` grants, cached under ``key`` for
    ``ACCESS_CACHE_SECONDS`` (no roles too, unless ``remember_none`` is false: an answer that
    may turn yes within seconds); superusers without a role get ``SUPERUSER_ACCESS``.

    The cached value is ``[generation, roles]``: read with the user's generation in one round
    trip, and used only while that generation is current (see the module doc). The generation
    is read before the memberships, so an answer computed while a change commits is stored
    under the generation the change then replaces."""
    if not user.is_authenticated:
        return NO_ACCESS
    generation_key = _generation_key(user.pk)
    found = cache.get_many([key, generation_key])
    generation = found.get(generation_key)
    cached = found.get(key)
    roles = None
    if generation is not None and isinstance(cached, list | tuple) and len(cached) == 2 \
            and cached[0] == generation:
        roles = cached[1]
    if roles is None:
        if generation is None:
            generation = _current_generation(user.pk)
        roles = sorted(roles_of(user.pk))
        if roles or remember_none:
            cache.set(key, [generation, roles], ACCESS_CACHE_SECONDS)
    if not roles and getattr(user, "is_superuser", False):
        return SUPERUSER_ACCESS
    return BlobAccess(frozenset(roles))


def blob_access(user: AbstractBaseUser | AnonymousUser, blob_id: int) -> BlobAccess:
    """What ``user`` may receive of blob ``blob_id`` (cached briefly, see the module doc)."""
    return _cached_access(user, f"evalhub:blob-access:{user.pk}:{blob_id}",
                          lambda user_id: _roles(
                              user_id, _image_in_project(blob_id, OuterRef("project_id"))))


def blob_preview_access(user: AbstractBaseUser | AnonymousUser, blob_id: int) -> BlobAccess:
    """What ``user`` may receive of blob ``blob_id``'s preview: ``original`` (owners and
    scientists) counts only the projects in which an image of a run has this blob with its
    preview shown (``runs.models.PREVIEW_SHOWN``, the rule ``Image.preview`` reads: its own
    preview task has run). A preview's path names the content hash, which a project's API
    shows: answered as soon as the blob had a preview, made for another project, it would tell
    an importer that those bytes existed elsewhere (runs/previews.py). A yes is cached briefly,
    like :func:`blob_access`."""
    ready = Image.objects.preview_shown().filter(blob_id=blob_id,
                                                 run__project_id=OuterRef("project_id"))
    # "Not yet" is not remembered: the preview task may mark the image ready a second later.
    return _cached_access(user, f"evalhub:preview-access:{user.pk}:{blob_id}",
                          lambda user_id: _roles(user_id, Q(Exists(ready),
                                                            role__in=ORIGINAL_ROLES)),
                          remember_none=False)


def project_blob_access(user: AbstractBaseUser | AnonymousUser, project_id: int,
                        blob_id: int) -> BlobAccess:
    """What ``user`` may receive of blob ``blob_id`` under its name in project
    ``project_id`` (blobs/names.py): their roles in that project, if the blob belongs to it;
    one query, cached briefly like :func:`blob_access`."""
    return _cached_access(user, f"evalhub:blob-access:{user.pk}:{project_id}:{blob_id}",
                          lambda user_id: _roles(
                              user_id, _image_in_project(blob_id, project_id), project_id))


def video_access(user: AbstractBaseUser | AnonymousUser, video_id: int) -> BlobAccess:
    """What ``user`` may receive of video ``video_id``: ``display`` is the rendition and the
    strip, ``original`` the imported file (cached briefly, like :func:`blob_access`)."""
    return _cached_access(user, f"evalhub:video-access:{user.pk}:{video_id}",
                          lambda user_id: _roles(
                              user_id, _video_in_project(video_id, OuterRef("project_id"))))


def project_video_access(user: AbstractBaseUser | AnonymousUser, project_id: int,
                         video_id: int) -> BlobAccess:
    """What ``user`` may receive of video ``video_id`` under its name in project
    ``project_id``: the roles in that project, if the video belongs to it (cached briefly)."""
    return _cached_access(user, f"evalhub:video-access:{user.pk}:{project_id}:{video_id}",
                          lambda user_id: _roles(
                              user_id, _video_in_project(video_id, project_id), project_id))
