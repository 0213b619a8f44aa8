"""The annotator-facing API under /api/v1/rate/<campaign>/ (blind: no run names anywhere).

The two hot endpoints, next/ and votes/, are plain Django views in rating_views.py; the page
calls them with a rating token it gets here (rating_tokens.py).
"""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.campaigns.leasing import (
    LeaseNotYours,
    active_leases,
    lease_close,
    lease_for_annotator,
)
from evalhub.campaigns.models import Campaign, ImageReport, LeaseStatus
from evalhub.campaigns.payloads import criteria_payload, lease_payload, lease_queryset
from evalhub.campaigns.raters import NoSuchCampaign, campaign_of_member
from evalhub.campaigns.rating import progress
from evalhub.campaigns.rating_tokens import RATING_TOKEN_SECONDS, rating_token_issue
from evalhub.campaigns.voting import vote_undo


def campaign_for_rater(request: Request, campaign_id: int) -> Campaign:
    """The campaign, if the caller holds any role in its project (one query)."""
    try:
        return campaign_of_member(user=request.user, campaign_id=campaign_id)
    except NoSuchCampaign as exc:
        raise NotFound(exc.message) from exc


class RateCampaignApi(APIView):
    """Campaign instructions, criteria and the caller's progress."""

    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        return Response({
            "id": campaign.pk, "name": campaign.name, "instructions": campaign.instructions,
            "status": campaign.status, "criteria": criteria_payload(campaign),
            "progress": progress(campaign_id=campaign.pk, annotator_id=request.user.pk),
        })


class RateTokenApi(APIView):
    """A fresh rating token for the caller (the rating page asks when its token expired)."""

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        return Response({
            "token": rating_token_issue(user_id=request.user.pk, campaign_id=campaign.pk),
            "expires_in": RATING_TOKEN_SECONDS,
        }, status=201)


class RateLeasesApi(APIView):
    """The caller's active leases, oldest first: a reloaded page resumes where it was."""

    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        leases = lease_queryset().filter(
            pk__in=active_leases(campaign=campaign, annotator=request.user).values("pk")
        ).order_by("leased_at")
        return Response([lease_payload(lease) for lease in leases])


class UndoInputSerializer(serializers.Serializer):
    client_id = serializers.UUIDField()


class RateUndoApi(APIView):
    """Retract the caller's vote and hand its task back to them."""

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        form = UndoInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        lease = vote_undo(annotator=request.user, client_id=form.validated_data["client_id"])
        if lease.campaign_id != campaign.pk:
            raise NotFound("No such vote in this campaign.")
        return Response(lease_payload(lease_queryset().get(pk=lease.pk)))


class ReportInputSerializer(serializers.Serializer):
    side = serializers.ChoiceField(choices=["left", "right", "source"])
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RateLeaseActionApi(APIView):
    """Skip a task, or report a broken image (which also skips it)."""

    def post(self, request: Request, campaign_id: int, lease_id, action: str) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        try:
            lease = lease_for_annotator(lease_id=lease_id, annotator=request.user)
        except LeaseNotYours as exc:
            raise PermissionDenied(exc.message) from exc
        if lease.campaign_id != campaign.pk:
            raise PermissionDenied("This task is not part of this campaign.")
        if action == "skip":
            lease_close(lease=lease, status=LeaseStatus.SKIPPED)
        else:
            form = ReportInputSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            side = form.validated_data["side"]
            task = lease.task
            image = None
            if side != "source":
                shows_a = (side == "left") == (lease.a_side == "left")
                image = task.image_a if shows_a else task.image_b
            ImageReport.objects.create(task=task, image=image, side=side,
                                       annotator=request.user, note=form.validated_data["note"])
            lease_close(lease=lease, status=LeaseStatus.REPORTED)
        return Response({"status": lease.status,
                         "progress": progress(campaign_id=campaign.pk,
                                              annotator_id=request.user.pk)})
