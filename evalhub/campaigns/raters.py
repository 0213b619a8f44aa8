"""Who is rating, and which campaign they may rate.

A rater is a user the session already authenticated, an API token still to check, or the user
id a rating token vouches for (rating_tokens.py), whose account is still to check; the SQL
rating path checks tokens and accounts inside its one database call
(``evalhub_rater_campaign_v1``), the ORM path here. Any role in the campaign's project may
rate; anyone else is told the campaign does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authtoken.models import Token

from evalhub.campaigns.models import Campaign
from evalhub.core.errors import EvalHubError

BAD_TOKEN = "Invalid token."


class BadCredentials(EvalHubError):
    """The API or rating token is unknown, expired or its user inactive (401)."""


class NoSuchCampaign(EvalHubError):
    """No campaign of that id in any project the rater belongs to (404)."""


@dataclass(frozen=True)
class Rater:
    user: AbstractBaseUser | None = None  # authenticated by the session
    token: str | None = None  # an API token, not yet checked
    user_id: int | None = None  # from a genuine rating token; the account not yet checked

    def __post_init__(self) -> None:
        given = [self.user, self.token, self.user_id]
        if sum(value is not None for value in given) != 1:
            raise ValueError("A rater is one of: a session user, an API token, a user id.")


def token_user(key: str) -> AbstractBaseUser:
    """The active user of an API token, or BadCredentials."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        raise BadCredentials(BAD_TOKEN)
    return token.user


def active_user(user_id: int) -> AbstractBaseUser:
    """The user of that id if the account is active, or BadCredentials."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise BadCredentials(BAD_TOKEN)
    return user


def rater_user(rater: Rater) -> AbstractBaseUser:
    """The rating user, once their credentials are checked (BadCredentials if they fail)."""
    if rater.token is not None:
        return token_user(rater.token)
    if rater.user_id is not None:
        return active_user(rater.user_id)
    return rater.user


def rater_campaign(*, rater: Rater, campaign_id: int) -> tuple[AbstractBaseUser, Campaign]:
    """The rating user and the campaign, or BadCredentials / NoSuchCampaign."""
    user = rater_user(rater)
    return user, campaign_of_member(user=user, campaign_id=campaign_id)


def campaign_of_member(*, user: AbstractBaseUser, campaign_id: int) -> Campaign:
    """The campaign, if the user holds any role in its project (one query)."""
    campaign = Campaign.objects.filter(pk=campaign_id, project__memberships__user=user).first()
    if campaign is None:
        raise NoSuchCampaign("No such campaign.")
    return campaign
