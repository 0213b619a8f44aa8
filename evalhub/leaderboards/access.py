"""Who may see leaderboards: owners and scientists; annotators get 403, others 404."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from evalhub.campaigns.models import Campaign
from evalhub.projects.selectors import SCIENCE_ROLES, role_in_project
from evalhub.runs.models import GenModel


def _check(user: AbstractBaseUser | AnonymousUser, project_id: int, what: str) -> None:
    role = role_in_project(user=user, project_id=project_id)
    if role is None:
        raise Http404(f"No such {what}.")
    if role not in SCIENCE_ROLES:
        raise PermissionDenied(f"Your role in this project ({role}) cannot see leaderboards.")


def campaign_for_science(*, user: AbstractBaseUser | AnonymousUser, campaign_id: int
                         ) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).select_related("project").first()
    if campaign is None:
        raise Http404("No such campaign.")
    _check(user, campaign.project_id, "campaign")
    return campaign


def model_for_science(*, user: AbstractBaseUser | AnonymousUser, model_id: int) -> GenModel:
    model = GenModel.objects.filter(pk=model_id).select_related("project").first()
    if model is None:
        raise Http404("No such model.")
    _check(user, model.project_id, "model")
    return model
