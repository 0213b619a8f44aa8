"""The annotator-facing API under /api/v1/rate/<campaign>/ (blind: no run names anywhere).

Session (the rating page, CSRF checked) or API-token authentication, like every other
endpoint. ``next/`` leases a task; ``votes/`` stores a vote and, when the body asks with
``next``, leases the following task in the same request (one request per vote).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalhub.campaigns.building.images import campaign_images_preparing
from evalhub.campaigns.models import MAX_K, Campaign, LeaseStatus, TaskKind
from evalhub.campaigns.selectors import campaign_for_rater, campaign_medium
from evalhub.campaigns.serving.leasing import (
    active_leases,
    lease_close,
    lease_for_annotator,
    lease_queryset,
    lease_report,
    rater_votes,
)
from evalhub.campaigns.serving.payloads import criteria_payload, lease_payload
from evalhub.campaigns.serving.rating import (
    Progress,
    Vote,
    rate_next,
    rate_undo,
    rate_vote,
    remaining,
)
from evalhub.campaigns.serving.voting import DISPLAYED_ANSWERS
from evalhub.core.serializers import RejectUnknownFields


def progress(*, campaign: Campaign, annotator_id: int) -> Progress:
    """The annotator's vote count and the judgments the campaign still needs."""
    my_votes = rater_votes(campaign=campaign.pk, annotator_id=annotator_id).count()
    return Progress(my_votes, remaining(campaign.pk))


class PyramidSerializer(serializers.Serializer):
    """The Deep Zoom descriptor's content (payloads.pyramid_payload), so no ``.dzi`` is
    fetched first."""

    url = serializers.CharField(help_text="The tiles' folder: a tile is url + "
                                          "level/col_row.format.")
    width = serializers.IntegerField(help_text="Pixels.")
    height = serializers.IntegerField(help_text="Pixels.")
    tile_size = serializers.IntegerField(help_text="Pixels.")
    overlap = serializers.IntegerField(help_text="Pixels.")
    format = serializers.ChoiceField(choices=["jpeg", "webp"])
    whole_levels = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Levels also served as one picture: url + level/whole.format.")
    query = serializers.CharField(
        allow_blank=True,
        help_text="Appended to every tile URL: the annotator's tile grant (?g=...), which "
                  "spares the tile requests the access queries for about a minute.")


class ShownVideoSerializer(serializers.Serializer):
    """A video side (payloads.video_payload): the rendition, never the original."""

    url = serializers.CharField(help_text="VP9 WebM rendition, pictures only.")
    poster = serializers.CharField()
    fps = serializers.FloatField(help_text="Frames per second.")
    frames = serializers.IntegerField()
    duration = serializers.FloatField(help_text="Seconds.")
    width = serializers.IntegerField(help_text="Pixels.")
    height = serializers.IntegerField(help_text="Pixels.")


class ShownImageSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The display derivative, never the original: the "
                                          "pixels as lossless WebP (.webp), encoded the same "
                                          "way for every image.")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    tiles = serializers.CharField(allow_null=True, help_text="Deep Zoom descriptor, if tiled.")
    pyramid = PyramidSerializer(allow_null=True, help_text="The descriptor's geometry, if "
                                                           "tiled and built (null until the "
                                                           "build: open tiles).")
    video = ShownVideoSerializer(allow_null=True, help_text="For a video output (the image "
                                                            "is then its poster frame).")


class TaskSerializer(serializers.Serializer):
    """A leased task as the page shows it: no run, checkpoint or model anywhere."""

    lease = serializers.UUIDField()
    expires_at = serializers.DateTimeField()
    prompt = serializers.CharField()
    source_image = ShownImageSerializer(allow_null=True)
    left = ShownImageSerializer(required=False, help_text="Pair tasks.")
    right = ShownImageSerializer(required=False, help_text="Pair tasks.")
    kind = serializers.CharField(required=False, help_text="'best_of_k' for best-of-K tasks.")
    images = ShownImageSerializer(many=True, required=False,
                                  help_text="Best of K: the K images in display order (slots "
                                            "0..K-1; keys 1..K).")


class PreparingSerializer(serializers.Serializer):
    """Large images (over 4096 px) of the campaign whose tiles exist, out of all of them."""

    done = serializers.IntegerField()
    total = serializers.IntegerField()


class DoneSerializer(serializers.Serializer):
    """No task: nothing left for the caller (``done`` true), or none free now (``done`` false,
    ``code`` nothing_free: the tasks left are leased to others; ask again later), or the
    campaign's large images are still being prepared (``done`` false, ``preparing`` set; ask
    again in a few seconds)."""

    done = serializers.BooleanField()
    detail = serializers.CharField()
    code = serializers.CharField(required=False, help_text=(
        "campaign_not_open when no task comes because the campaign is paused or closed; "
        "nothing_free when the tasks left for the caller are leased to other annotators now "
        "(one comes back if its lease ends unvoted: ask again later)."))
    preparing = PreparingSerializer(required=False,
                                    help_text="Present while images are being prepared.")


class ProgressSerializer(serializers.Serializer):
    my_votes = serializers.IntegerField()
    remaining = serializers.IntegerField()


class CriterionSerializer(serializers.Serializer):
    key = serializers.CharField()
    question = serializers.CharField()


class RateCampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    instructions = serializers.CharField()
    status = serializers.CharField()
    criteria = CriterionSerializer(many=True)
    task_kind = serializers.CharField(help_text="pair or best_of_k")
    k = serializers.IntegerField(help_text="Images per task.")
    rank_all = serializers.BooleanField(help_text="Best of K: rank all K by successive picks.")
    progress = ProgressSerializer()
    preparing = PreparingSerializer(
        allow_null=True, help_text="Null once every large image has its tiles; until then "
                                   "nothing is served and this says how far preparation is.")


class LeaseActionAnswerSerializer(serializers.Serializer):
    status = serializers.CharField()
    progress = ProgressSerializer()


class VoteAnswerSerializer(serializers.Serializer):
    client_id = serializers.UUIDField()
    recorded = serializers.BooleanField()
    progress = ProgressSerializer()
    closed = serializers.ListField(
        child=serializers.UUIDField(),
        help_text="The caller's newer leases of the voted task that this late vote closed as "
                  "answered by it (the task was served to them again after the voted lease "
                  "expired): no longer to be shown or voted on. Usually empty.")
    next = serializers.JSONField(required=False,
                                 help_text="The next task, or {done, detail[, preparing]} "
                                           "(see the next/ endpoint); when asked.")


class NextInputSerializer(RejectUnknownFields):
    exclude = serializers.ListField(child=serializers.UUIDField(), required=False, default=list,
                                    max_length=10,
                                    help_text="Leases the page already shows.")


class VoteInputSerializer(RejectUnknownFields):
    client_id = serializers.UUIDField(help_text="Generated by the client; a retry sends it again.")
    lease = serializers.UUIDField()
    answers = serializers.DictField(child=serializers.ChoiceField(choices=DISPLAYED_ANSWERS),
                                    required=False, default=dict,
                                    help_text="Pair tasks: criterion -> left, right, tie or "
                                              "both_bad.")
    rankings = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=0,
                                                                   max_value=MAX_K - 1),
                                    min_length=1, max_length=MAX_K),
        required=False, default=dict,
        help_text="Best-of-K tasks: criterion -> the picked slots (0..K-1 as displayed), best "
                  "first: one pick, or K-1 or K for a rank-all campaign.")
    latency_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True,
                                          default=None)
    next = NextInputSerializer(required=False, default=None, allow_null=True,
                               help_text="Ask for the following task in the same request.")


def _validated(form: serializers.Serializer, data: Any) -> dict[str, Any]:
    """``data`` validated by ``form``, one of the instances below built once per process.

    DRF deep-copies a serializer's declared fields every time one is instantiated: for the
    vote's input (nested dict, list and serializer fields) that copy cost more CPU than the
    validation. Validation keeps no state on the instance, so one serves every request and
    thread. A refusal is answered by a fresh serializer, with exactly DRF's error body.
    """
    try:
        return form.run_validation(data)
    except ValidationError:
        type(form)(data=data).is_valid(raise_exception=True)
        raise


_NEXT_INPUT, _VOTE_INPUT = NextInputSerializer(), VoteInputSerializer()


class RateCampaignApi(APIView):
    """Campaign instructions, criteria and the caller's progress."""

    @extend_schema(responses=RateCampaignSerializer)
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(user=request.user, campaign_id=campaign_id)
        return Response({
            "id": campaign.pk, "name": campaign.name, "instructions": campaign.instructions,
            "status": campaign.status,
            "criteria": criteria_payload(campaign, campaign_medium(campaign=campaign)),
            "task_kind": campaign.task_kind, "k": campaign.k,
            "rank_all": campaign.task_kind == TaskKind.BEST_OF_K and campaign.rank_all,
            "progress": asdict(progress(campaign=campaign, annotator_id=request.user.pk)),
            "preparing": preparing.progress() if (
                preparing := campaign_images_preparing(campaign)) else None,
        })


class RateNextApi(APIView):
    """Lease the next task (201), or say that none is left for the caller (200, ``done``), or
    that the campaign's images are being prepared (200, ``done`` false, ``preparing``)."""

    throttle_scope = "rating"  # votes and leases per annotator: EVALHUB_RATING_THROTTLE

    @extend_schema(request=NextInputSerializer, responses={201: TaskSerializer,
                                                           200: DoneSerializer})
    def post(self, request: Request, campaign_id: int) -> Response:
        data = _validated(_NEXT_INPUT, request.data)
        payload = rate_next(annotator=request.user, campaign_id=campaign_id,
                            exclude=set(data["exclude"]))
        return Response(payload, status=201 if "lease" in payload else 200)


class RateVoteApi(APIView):
    """Store a vote once: 201 the first time, 200 with the same body for a retry.

    409 when the lease was answered by another vote of the caller (another tab), for a vote id
    reused with another vote, and, with ``code`` vote_undone, for a vote resent after it was
    undone (it stays undone). 400 for a late vote (the lease expired) once someone else was
    given the task, or once the task has the judgments it needs; 400 ``campaign_not_open``
    while the campaign is paused or closed. A late vote on a task served to the caller again
    counts and closes that newer lease (``closed``).
    """

    throttle_scope = "rating"  # votes and leases per annotator: EVALHUB_RATING_THROTTLE

    @extend_schema(request=VoteInputSerializer,
                   responses={201: VoteAnswerSerializer, 200: VoteAnswerSerializer})
    def post(self, request: Request, campaign_id: int) -> Response:
        data = _validated(_VOTE_INPUT, request.data)
        wanted = data["next"]
        outcome = rate_vote(
            annotator=request.user, campaign_id=campaign_id,
            vote=Vote(data["client_id"], data["lease"], data["answers"], data["latency_ms"],
                      rankings=data["rankings"]),
            want_next=wanted is not None,
            exclude=set(wanted["exclude"]) if wanted is not None else None)
        body = {"client_id": str(outcome.result.client_id), "recorded": True,
                "progress": asdict(outcome.progress),
                "closed": [str(pk) for pk in outcome.closed]}
        if wanted is not None:
            body["next"] = outcome.next
        return Response(body, status=201 if outcome.result.created else 200)


class RateLeasesApi(APIView):
    """The caller's active leases, oldest first: a reloaded page resumes where it was."""

    @extend_schema(responses=TaskSerializer(many=True))
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(user=request.user, campaign_id=campaign_id)
        leases = lease_queryset().filter(
            pk__in=active_leases(campaign=campaign, annotator=request.user).values("pk")
        ).order_by("leased_at")
        return Response([lease_payload(lease) for lease in leases])


class UndoInputSerializer(RejectUnknownFields):
    client_id = serializers.UUIDField()


_UNDO_INPUT = UndoInputSerializer()


class UndoHeldSerializer(serializers.Serializer):
    """The vote is retracted, but nothing is leased: another annotator holds its pair now, or
    it is a retired best-of-K set (``detail`` says which)."""

    retracted = serializers.BooleanField()
    detail = serializers.CharField()


class RateUndoApi(APIView):
    """Retract the caller's vote and hand its task back to them (201, a fresh lease on the same
    pair), or only retract it (200, ``detail`` says why): when another annotator holds the pair
    now, it is served to the caller again later; a retired best-of-K set showing one file
    twice is not served again.

    400 with ``code`` vote_undone when the vote was undone already (an earlier undo whose
    answer was lost, or a concurrent one: exactly one of them retracts it); the pair it handed
    back is among the caller's leases (``leases/``). 400 without a code when the caller has no
    vote with this id here; 400 ``campaign_not_open`` while the campaign is paused or closed.
    """

    @extend_schema(request=UndoInputSerializer, responses={201: TaskSerializer,
                                                           200: UndoHeldSerializer})
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_for_rater(user=request.user, campaign_id=campaign_id)
        data = _validated(_UNDO_INPUT, request.data)
        undone = rate_undo(annotator=request.user, campaign=campaign,
                           client_id=data["client_id"])
        if undone.lease is None:
            return Response({"retracted": True, "detail": undone.detail})
        return Response(lease_payload(lease_queryset().get(pk=undone.lease.pk)), status=201)


class ReportInputSerializer(RejectUnknownFields):
    side = serializers.ChoiceField(
        choices=["left", "right", "source", *(str(slot) for slot in range(MAX_K))],
        help_text="As displayed: left, right or source; best of K: the slot, 0..K-1.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


_REPORT_INPUT = ReportInputSerializer()


class SkipInputSerializer(RejectUnknownFields):
    """A skip takes no field (the lease in the path says what is skipped): an empty object,
    or no body; any key is refused like every other rating input's unknown keys."""


_SKIP_INPUT = SkipInputSerializer()


class _RateLeaseActionApi(APIView):
    def _lease(self, request: Request, campaign_id: int, lease_id) -> tuple[Campaign, object]:
        campaign = campaign_for_rater(user=request.user, campaign_id=campaign_id)
        return campaign, lease_for_annotator(lease_id=lease_id, annotator=request.user,
                                             campaign=campaign)

    def _answer(self, request: Request, campaign: Campaign, lease) -> Response:
        return Response({"status": lease.status, "progress": asdict(
            progress(campaign=campaign, annotator_id=request.user.pk))})


class RateSkipApi(_RateLeaseActionApi):
    """Skip a task: it is not served to the caller again."""

    @extend_schema(request=SkipInputSerializer, responses=LeaseActionAnswerSerializer)
    def post(self, request: Request, campaign_id: int, lease_id) -> Response:
        campaign, lease = self._lease(request, campaign_id, lease_id)
        _validated(_SKIP_INPUT, request.data or {})
        lease_close(lease=lease, status=LeaseStatus.SKIPPED)
        return self._answer(request, campaign, lease)


class RateReportApi(_RateLeaseActionApi):
    """Report a broken image (which also skips its task)."""

    @extend_schema(request=ReportInputSerializer, responses=LeaseActionAnswerSerializer)
    def post(self, request: Request, campaign_id: int, lease_id) -> Response:
        campaign, lease = self._lease(request, campaign_id, lease_id)
        lease_report(lease=lease, **_validated(_REPORT_INPUT, request.data))
        return self._answer(request, campaign, lease)
