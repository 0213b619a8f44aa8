"""Who may open the campaign pages: owners and scientists of the campaign's project.

The API's rule (``CampaignViewSet``: read and write roles are owner and scientist), the same
one as the gallery's (evalhub/runs/gallery/access.py): non-members and unknown ids 404,
annotators 403. Anonymous callers are sent to sign in by ``login_required`` first.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from evalhub.campaigns.models import Campaign
from evalhub.projects.selectors import SCIENCE_ROLES, role_in_project

User = AbstractBaseUser | AnonymousUser


def campaign_for_science(*, user: User, campaign_id: int) -> tuple[Campaign, str]:
    """The campaign (with its project) and the caller's role, if the caller is an owner or
    scientist of its project (else 404 / 403)."""
    campaign = Campaign.objects.filter(pk=campaign_id).select_related("project").first()
    if campaign is None:
        raise Http404("No such campaign.")
    role = role_in_project(user=user, project_id=campaign.project_id)
    if role is None:
        raise Http404("No such campaign.")
    if role not in SCIENCE_ROLES:
        raise PermissionDenied(f"Your role in this project ({role}) cannot manage campaigns.")
    return campaign, role
