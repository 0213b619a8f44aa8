"""HTML pages: the annotator's rating page."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie

from evalhub.campaigns.models import Campaign
from evalhub.campaigns.payloads import criteria_payload
from evalhub.projects.selectors import role_in_project


@login_required
@ensure_csrf_cookie
def rate_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if role_in_project(user=request.user, project_id=campaign.project_id) is None:
        raise Http404("No such campaign.")
    return render(request, "campaigns/rate.html", {
        "campaign": campaign,
        "criteria": criteria_payload(campaign),
    })
