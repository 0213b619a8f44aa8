"""Rating tokens: the rating page's short-lived credentials for next/ and votes/.

The page is a session-cookie client, and a cookie-authenticated POST must load the session
and the user (two queries) and pass the CSRF check, all through Django's full middleware
stack: measured, that doubled the web process's CPU per vote. So the page view, which has
just authenticated the session, signs a rating token for that user and campaign, and the page
sends it as ``Authorization: Rating <token>`` on its two hot requests. The token is checked
with an HMAC (no query); the one database call that does the work still checks that the user
is active and a member of the campaign's project, so deactivating a user or removing them
from the project takes effect at once. What the token does not follow is the session itself:
a user who logs out elsewhere can go on voting from an open page until the token expires
(``RATING_TOKEN_SECONDS``), like any short-lived access token. The page refreshes an expired
token through its session (``POST .../rating-token/``), so an annotator never notices.

A header, unlike a cookie, is never attached to a request by the browser on its own, so these
requests need no CSRF check.
"""

from __future__ import annotations

from django.core import signing

from evalhub.campaigns.raters import BadCredentials

RATING_TOKEN_SECONDS = 30 * 60
SCHEME = "Rating"
SALT = "evalhub.campaigns.rating-token"
EXPIRED = "The rating token has expired."
INVALID = "Invalid rating token."
OTHER_CAMPAIGN = "The rating token is for another campaign."


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def rating_token_issue(*, user_id: int, campaign_id: int) -> str:
    """A token that lets ``user_id`` rate ``campaign_id`` for RATING_TOKEN_SECONDS."""
    return _signer().sign(f"{user_id}:{campaign_id}")


def rating_token_user_id(token: str, *, campaign_id: int,
                         max_age: float = RATING_TOKEN_SECONDS) -> int:
    """The user a token was issued to, if it is genuine, current and for this campaign.

    Raises BadCredentials otherwise. Whether that user may still rate is the caller's check.
    """
    try:
        value = _signer().unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadCredentials(EXPIRED) from exc
    except signing.BadSignature as exc:
        raise BadCredentials(INVALID) from exc
    user_id, _, token_campaign = value.partition(":")
    if token_campaign != str(campaign_id):
        raise BadCredentials(OTHER_CAMPAIGN)
    return int(user_id)
