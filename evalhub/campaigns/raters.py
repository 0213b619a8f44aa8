"""Who is rating, and which campaign they may rate.

A rater is either a user the session already authenticated or an API token still to check;
the SQL rating path checks the token inside its one database call
(``evalhub_rater_campaign_v1``), the ORM path here. Any role in the campaign's project may
rate; anyone else is told the campaign does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authtoken.models import Token

from evalhub.campaigns.models import Campaign
from evalhub.core.errors import EvalHubError

BAD_TOKEN = "Invalid token."


class BadCredentials(EvalHubError):
    """The API token is unknown or its user is inactive (401)."""


class NoSuchCampaign(EvalHubError):
    """No campaign of that id in any project the rater belongs to (404)."""


@dataclass(frozen=True)
class Rater:
    user: AbstractBaseUser | None = None  # authenticated by the session
    token: str | None = None  # an API token, not yet checked

    def __post_init__(self) -> None:
        if (self.user is None) == (self.token is None):
            raise ValueError("A rater is a session user or an API token, not both.")


def token_user(key: str) -> AbstractBaseUser:
    """The active user of an API token, or BadCredentials."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        raise BadCredentials(BAD_TOKEN)
    return token.user


def rater_campaign(*, rater: Rater, campaign_id: int) -> tuple[AbstractBaseUser, Campaign]:
    """The rating user and the campaign, or BadCredentials / NoSuchCampaign."""
    user = rater.user if rater.token is None else token_user(rater.token)
    return user, campaign_of_member(user=user, campaign_id=campaign_id)


def campaign_of_member(*, user: AbstractBaseUser, campaign_id: int) -> Campaign:
    """The campaign, if the user holds any role in its project (one query)."""
    campaign = Campaign.objects.filter(pk=campaign_id, project__memberships__user=user).first()
    if campaign is None:
        raise NoSuchCampaign("No such campaign.")
    return campaign
