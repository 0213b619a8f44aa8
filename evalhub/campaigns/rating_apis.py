"""The annotator-facing API under /api/v1/rate/<campaign>/ (blind: no run names anywhere)."""

from __future__ import annotations

from django.core.cache import cache
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.campaigns.leasing import (
    LeaseNotYours,
    NothingToRate,
    active_leases,
    campaign_remaining,
    lease_close,
    lease_for_annotator,
    lease_next,
)
from evalhub.campaigns.models import Campaign, ImageReport, LeaseStatus
from evalhub.campaigns.payloads import criteria_payload, lease_payload, lease_queryset
from evalhub.campaigns.quality import human_judgments
from evalhub.campaigns.voting import VoteConflict, vote_submit, vote_undo

REMAINING_CACHE_SECONDS = 5


def campaign_for_rater(request: Request, campaign_id: int) -> Campaign:
    """The campaign, if the caller holds any role in its project (one query)."""
    campaign = Campaign.objects.filter(
        pk=campaign_id, project__memberships__user=request.user).first()
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


def my_progress(campaign: Campaign, user) -> dict:
    mine = human_judgments(campaign).filter(annotator=user, criterion="overall").count()
    # The campaign-wide sum scans every task; a few seconds of staleness is fine for a counter.
    key = f"campaign-remaining:{campaign.pk}"
    remaining = cache.get(key)
    if remaining is None:
        remaining = campaign_remaining(campaign=campaign)
        cache.set(key, remaining, timeout=REMAINING_CACHE_SECONDS)
    return {"my_votes": mine, "remaining": remaining}


class RateCampaignApi(APIView):
    """Campaign instructions, criteria and the caller's progress."""

    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        return Response({
            "id": campaign.pk, "name": campaign.name, "instructions": campaign.instructions,
            "status": campaign.status, "criteria": criteria_payload(campaign),
            "progress": my_progress(campaign, request.user),
        })


class NextInputSerializer(serializers.Serializer):
    exclude = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)


def _next_payload(campaign: Campaign, user, exclude: set) -> dict:
    try:
        lease = lease_next(campaign=campaign, annotator=user, exclude=exclude)
    except NothingToRate as exc:
        return {"detail": exc.message, "done": True}
    return lease_payload(lease)


class RateNextApi(APIView):
    """Lease the next task (or return one the caller already holds and has not shown)."""

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        form = NextInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        payload = _next_payload(campaign, request.user, set(form.validated_data["exclude"]))
        done = payload.get("done", False)
        return Response(payload, status=status.HTTP_200_OK if done else status.HTTP_201_CREATED)


class RateLeasesApi(APIView):
    """The caller's active leases, oldest first: a reloaded page resumes where it was."""

    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        leases = lease_queryset().filter(
            pk__in=active_leases(campaign=campaign, annotator=request.user).values("pk")
        ).order_by("leased_at")
        return Response([lease_payload(lease) for lease in leases])


class VoteInputSerializer(serializers.Serializer):
    client_id = serializers.UUIDField()
    lease = serializers.UUIDField()
    answers = serializers.DictField(child=serializers.ChoiceField(
        choices=["left", "right", "tie", "both_bad"]))
    latency_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    next = NextInputSerializer(required=False, allow_null=True, default=None)


class RateVoteApi(APIView):
    """Store a vote once: 201 the first time, 200 with the same body for a retry.

    With ``next`` in the body the response also carries the following task, so a page or a
    script rates with one round trip per vote.
    """

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(request, campaign_id)
        form = VoteInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            result = vote_submit(annotator=request.user, lease_id=data["lease"],
                                 client_id=data["client_id"], answers=data["answers"],
                                 latency_ms=data.get("latency_ms"), campaign=campaign)
        except LeaseNotYours as exc:
            raise PermissionDenied(exc.message) from exc
        except VoteConflict as exc:
            return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
        body = {"client_id": str(result.client_id), "recorded": True,
                "progress": my_progress(campaign, request.user)}
        if data.get("next") is not None:
            body["next"] = _next_payload(campaign, request.user, set(data["next"]["exclude"]))
        return Response(body, status=status.HTTP_201_CREATED if result.created
                        else status.HTTP_200_OK)


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
        return Response({"status": lease.status, "progress": my_progress(campaign, request.user)})
