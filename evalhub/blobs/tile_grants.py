"""Tile grants: the rating page's tile requests answered without a database query.

A 16K image at fit and every step of a deep zoom are tile requests, each once an access
decision (blobs/access.py: the session's user, the blob by its per-project name, the roles in
that project; two queries even with the roles cached). The rating payload already made that
decision when it leased the task to its annotator, so it hands the page a *grant* with each
pyramid: a keyed signature over (the image's per-project name, annotator id, expiry), sent as
the tiles' query ``?g=<expiry>-<signature>``. A tile request carrying a valid grant for the
session's user needs no access query: the user is Django's (the session's password hash
checked, inactive users refused: one prepared query), the signature is checked, and the
pyramid's storage name comes from a per-process map of per-project name to content hash,
which never changes for a name (tile views, campaigns/page/views.py).

Refused (the request then takes the full access check, which answers 404 to anyone the rule
does not admit): a grant that does not verify (forged, or for another image), one past its
expiry, one signed for another user than the session's, and no session at all.

Expiry: the end of the window after the current one (``GRANT_WINDOW_SECONDS``), so a grant
lives between one and two windows, at most ``ACCESS_CACHE_SECONDS``: a member removed from a
project stops receiving tiles by grant within two minutes (the access rule itself, with a
shared cache, refuses them at once: blobs/access.py). Windows make the URLs of one pyramid
the same for every payload built within a window, so the browser's cache serves a pair shown
again. Nothing in a grant names a run, a model or
the content hash: the token is the per-project name already in the URL (blobs/names.py), the
signature is an HMAC, the expiry a time. A grant is good for one image in one project: a user
of two projects holding the same bytes gets two unrelated names and grants.
"""

from __future__ import annotations

import time

from django.utils.crypto import constant_time_compare, salted_hmac

from evalhub.blobs.access import ACCESS_CACHE_SECONDS

GRANT_WINDOW_SECONDS = ACCESS_CACHE_SECONDS // 2
_SALT = "evalhub.blobs.tile-grant"
_SIGNATURE_HEX = 32  # 128 bits of HMAC-SHA256


def _signature(token: str, user_id: int | str, expiry: int) -> str:
    value = f"{token}:{user_id}:{expiry}"
    return salted_hmac(_SALT, value, algorithm="sha256").hexdigest()[:_SIGNATURE_HEX]


def tile_grant(token: str, user_id: int, now: float | None = None) -> str:
    """The grant for ``user_id`` to read the pyramid of per-project name ``token``:
    ``<expiry>-<signature>``, expiry in Unix seconds = the end of the next window."""
    now = time.time() if now is None else now
    expiry = (int(now) // GRANT_WINDOW_SECONDS + 2) * GRANT_WINDOW_SECONDS
    return f"{expiry}-{_signature(token, user_id, expiry)}"


def grant_admits(grant: str | None, token: str, user_id: int | str | None,
                 now: float | None = None) -> bool:
    """Whether ``grant`` was issued for ``token`` to ``user_id`` and has not expired."""
    if not grant or user_id is None:
        return False
    expiry, _, signature = grant.partition("-")
    # isascii: str.isdigit() also accepts digits int() refuses ("²") or reads ("٣").
    if not (expiry.isascii() and expiry.isdigit()) or len(expiry) > 12 \
            or len(signature) != _SIGNATURE_HEX:
        return False
    now = time.time() if now is None else now
    if int(expiry) <= now:
        return False
    return constant_time_compare(signature, _signature(token, user_id, int(expiry)))
