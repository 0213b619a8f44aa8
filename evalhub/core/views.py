from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.projects.selectors import SCIENCE_ROLES, projects_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where everyone lands: campaigns to rate, and for scientists the dashboards."""
    projects = projects_for_user(user=request.user)
    science = set(projects_for_user(user=request.user, roles=SCIENCE_ROLES)
                  .values_list("id", flat=True))
    to_rate = Campaign.objects.filter(project__in=projects, status=CampaignStatus.ACTIVE
                                      ).select_related("project").order_by("-created_at")
    return render(request, "core/home.html", {
        "projects": projects, "campaigns": to_rate, "is_scientist": bool(science),
    })

