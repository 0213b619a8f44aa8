from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalhub.campaigns.models import CampaignStatus
from evalhub.campaigns.selectors import campaigns_for_rater
from evalhub.projects.selectors import SCIENCE_ROLES, projects_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where everyone lands: campaigns to rate, and for scientists the dashboards."""
    projects = projects_for_user(user=request.user)
    science = set(projects_for_user(user=request.user, roles=SCIENCE_ROLES)
                  .values_list("id", flat=True))
    to_rate = campaigns_for_rater(user=request.user, projects=projects)
    return render(request, "core/home.html", {
        "projects": projects, "campaigns": to_rate, "is_scientist": bool(science),
        "active": CampaignStatus.ACTIVE,
    })

