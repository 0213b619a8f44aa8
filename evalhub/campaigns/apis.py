"""Scientist-facing campaign API: create, rename and reword, follow progress, quality control,
gold pairs."""

from __future__ import annotations

from dataclasses import asdict

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.manage.selectors import image_reports
from evalhub.campaigns.models import (
    DEFAULT_LEASE_SECONDS,
    MAX_LEASE_SECONDS,
    MIN_LEASE_SECONDS,
    PAIR_POLICY_HELP,
    Campaign,
    CampaignStatus,
    Criterion,
    PairPolicy,
    TaskKind,
)
from evalhub.campaigns.quality.agreement import agreement_by_criterion
from evalhub.campaigns.quality.annotators import annotator_quality, annotator_set_excluded
from evalhub.campaigns.quality.latency import latency_outliers
from evalhub.campaigns.selectors import campaigns_progress
from evalhub.campaigns.services import (
    campaign_create,
    campaign_set_annotators,
    campaign_set_status,
    campaign_update,
    members_named,
)
from evalhub.core.limits import MAX_CAMPAIGN_RUNS, MAX_INT64, MAX_TEXT_CHARS
from evalhub.core.serializers import (
    ReadForPage,
    RejectUnknownFields,
    read_for,
)
from evalhub.projects.api_base import ProjectScopedMixin
from evalhub.projects.models import Project
from evalhub.projects.permissions import require_project_role
from evalhub.projects.references import ScopedModelSerializer, ScopedPrimaryKeyRelatedField
from evalhub.runs.models import GenerationRun, Image
from evalhub.workspace.deletion import DeletionRules


class CampaignSerializer(ScopedModelSerializer):
    progress = serializers.SerializerMethodField()
    annotators = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True,
        help_text="Usernames of the members who may rate it; empty: every member.")

    class Meta:
        model = Campaign
        fields = ["id", "project", "name", "instructions", "runs", "prompt_category",
                  "criteria", "judgments_per_pair", "gold_rate", "gold_accuracy_threshold",
                  "pair_policy", "min_lpips_distance", "lease_seconds", "status", "open_when_built",
                  "task_kind", "k", "rank_all", "annotators", "build_report", "created_at",
                  "progress"]
        read_only_fields = ["id", "status", "annotators", "build_report", "created_at",
                            "progress"]
        list_serializer_class = ReadForPage

    @staticmethod
    def read_page(ids: list[int]) -> dict[int, dict[str, int]]:
        """The progress of a page of campaigns: two queries (each campaign's own took three)."""
        return campaigns_progress(campaign_ids=ids)

    def get_progress(self, campaign: Campaign) -> dict:
        return read_for(self, campaign)


#: What a campaign keeps once created (its tasks were built from it): sent back with the value
#: it has, accepted; with another, refused under the key as every read-only key is.
CAMPAIGN_FIXED_FIELDS = ("prompt_category", "criteria", "judgments_per_pair", "gold_rate",
                         "gold_accuracy_threshold", "pair_policy", "min_lpips_distance",
                         "lease_seconds", "open_when_built", "task_kind", "k", "rank_all")
#: What ``PATCH`` changes (``services.campaign_update``).
CAMPAIGN_EDITABLE_FIELDS = ("name", "instructions")


class CampaignChangeSerializer(CampaignSerializer):
    """``PATCH``'s body: the campaign as ``GET`` answers it, of which only ``name`` (the name
    rule, 200 characters) and ``instructions`` (free text) are written.

    The other keys may be sent back as fetched. Its id, project, runs and annotators are
    compared with the stored ones as every update compares what identifies an object
    (``RejectUnknownFields``), and the settings it was created with
    (:data:`CAMPAIGN_FIXED_FIELDS`) likewise, in the same words: they are not state the server
    moves (status, progress, build report: ignored), so another value would otherwise be
    dropped without a word while the client believed it changed."""

    FIXED_ON_UPDATE = frozenset(CAMPAIGN_FIXED_FIELDS)

    class Meta(CampaignSerializer.Meta):
        read_only_fields = [field for field in CampaignSerializer.Meta.fields
                            if field not in CAMPAIGN_EDITABLE_FIELDS]


class CampaignCreateSerializer(RejectUnknownFields):
    project = ScopedPrimaryKeyRelatedField(queryset=Project.objects.all())
    name = serializers.CharField(max_length=200)
    runs = ScopedPrimaryKeyRelatedField(
        queryset=GenerationRun.objects.all(), many=True, max_length=MAX_CAMPAIGN_RUNS,
        help_text=f"Ids of the runs to compare, each once: 2 to {MAX_CAMPAIGN_RUNS:,}.")
    criteria = serializers.ListField(child=serializers.ChoiceField(choices=Criterion.values),
                                     default=[Criterion.OVERALL])
    instructions = serializers.CharField(required=False, allow_blank=True, default="",
                                         max_length=MAX_TEXT_CHARS)
    prompt_category = serializers.CharField(required=False, allow_blank=True, default="",
                                            max_length=100)
    open_when_built = serializers.BooleanField(
        default=True, help_text="Open for rating once built; false keeps it a draft.")
    judgments_per_pair = serializers.IntegerField(default=3, min_value=1, max_value=50)
    gold_rate = serializers.FloatField(default=0.0)
    pair_policy = serializers.ChoiceField(choices=PairPolicy.values, default=PairPolicy.BALANCED,
                                          help_text=PAIR_POLICY_HELP)
    min_lpips_distance = serializers.FloatField(required=False, allow_null=True, default=None)
    lease_seconds = serializers.IntegerField(
        default=DEFAULT_LEASE_SECONDS, min_value=MIN_LEASE_SECONDS, max_value=MAX_LEASE_SECONDS)
    # Usernames, as the memberships API takes them: a user is not a project's object.
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list,
        max_length=10_000,
        help_text="Usernames of the project's members who may rate it; empty: every member.")
    task_kind = serializers.ChoiceField(
        choices=TaskKind.values, default=TaskKind.PAIR,
        help_text="pair: two images per task; best_of_k: k images of one prompt, one per run.")
    k = serializers.IntegerField(required=False, allow_null=True, default=None,
                                 help_text="Best of K: images per task, 3 to 6.")
    rank_all = serializers.BooleanField(
        default=False, help_text="Best of K: rank all k images by successive picks.")


class AnnotatorsSerializer(RejectUnknownFields):
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), max_length=10_000,
        help_text="Usernames of the project's members who may rate it; empty: every member.")


class GoldInputSerializer(RejectUnknownFields):
    image_a = ScopedPrimaryKeyRelatedField(queryset=Image.objects.all())
    image_b = ScopedPrimaryKeyRelatedField(queryset=Image.objects.all())
    answer = serializers.ChoiceField(choices=["a", "b", "tie"])


class ExcludeInputSerializer(RejectUnknownFields):
    annotator = serializers.IntegerField(min_value=1, max_value=MAX_INT64,
                                         help_text="User id of a member of the campaign's "
                                                   "project.")
    excluded = serializers.BooleanField(default=True)
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 max_length=MAX_TEXT_CHARS)


class ExcludeAnswerSerializer(serializers.Serializer):
    annotator = serializers.IntegerField()
    excluded = serializers.BooleanField()


class AnnotatorQualitySerializer(serializers.Serializer):
    annotator_id = serializers.IntegerField()
    username = serializers.CharField()
    votes = serializers.IntegerField()
    gold_votes = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    median_latency_ms = serializers.FloatField(allow_null=True,
                                               help_text="As the rating page reported it.")
    fast_votes = serializers.IntegerField(help_text="Votes faster than the floor (server clock).")
    median_vote_ms = serializers.FloatField(
        allow_null=True, help_text="Server-measured response time: from when the pair could "
        "first be on screen (the later of its lease and the annotator's previous vote).")
    flags = serializers.ListField(
        child=serializers.CharField(),
        help_text="The reliability estimate's flags, those the leaderboards' quality filter "
        "acts on: gold, fast, position, accuracy.")
    reasons = serializers.ListField(child=serializers.CharField(),
                                    help_text="Why each flag was raised, in words.")
    weight = serializers.FloatField(
        allow_null=True, help_text="What one of the annotator's votes counts in a weighted "
        "leaderboard (0-1); 0 when excluded.")
    excluded = serializers.BooleanField()
    flagged = serializers.BooleanField()


class AgreementSerializer(serializers.Serializer):
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha (nominal).")
    units = serializers.IntegerField()
    judgments = serializers.IntegerField()


class LatencyOutlierSerializer(serializers.Serializer):
    judgment_id = serializers.IntegerField()
    annotator_id = serializers.IntegerField()
    latency_ms = serializers.IntegerField()
    z = serializers.FloatField()
    kind = serializers.ChoiceField(choices=["fast", "slow"])


class QualitySerializer(serializers.Serializer):
    annotators = AnnotatorQualitySerializer(many=True)
    agreement = serializers.DictField(child=AgreementSerializer(),
                                      help_text="Per criterion.")
    latency_outliers = LatencyOutlierSerializer(many=True)


class GoldAnswerSerializer(serializers.Serializer):
    task = serializers.IntegerField()


class ImageReportSerializer(serializers.Serializer):
    """An annotator's report of a broken image or video (the rating page's "Report")."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    annotator = serializers.IntegerField(source="annotator_id", help_text="User id.")
    annotator_username = serializers.CharField(source="annotator.username")
    task = serializers.IntegerField(source="task_id")
    image = serializers.IntegerField(
        source="image_id", allow_null=True,
        help_text="The reported image (a video's poster row); null for an edit's source.")
    run = serializers.IntegerField(source="image.run_id", allow_null=True, default=None,
                                   help_text="The reported image's run; null for a source.")
    prompt = serializers.CharField(source="task.prompt.text")
    side = serializers.CharField(help_text="The pane as displayed: left, right or source; "
                                           "best of K: the slot, 0..K-1.")
    note = serializers.CharField(help_text="The annotator's note (may be empty).")


class CampaignViewSet(DeletionRules, ProjectScopedMixin, mixins.ListModelMixin,
                      mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Campaigns; ``PATCH`` renames one or rewords its instructions (nothing else changes once
    created; no ``PUT``: 405); ``DELETE`` as the campaigns page deletes (workspace/deletion.py:
    never one holding human votes, nor one being built), e.g. a failed build that holds its
    name."""

    serializer_class = CampaignSerializer
    filterset_fields = ["project", "status"]
    deletion_kind = "campaign"

    def base_queryset(self) -> QuerySet[Campaign]:
        return Campaign.objects.prefetch_related("runs", "annotators").order_by("-id")

    @extend_schema(request=CampaignCreateSerializer, responses={201: CampaignSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        self.check_role_first(request.data)
        form = CampaignCreateSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        require_project_role(request=request, project_id=data["project"].id,
                             roles=self.write_roles)
        data["annotators"] = members_named(project=data["project"],
                                           usernames=data["annotators"])
        campaign = campaign_create(created_by=request.user, **data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # PATCH's body: only the name and instructions are written (the rest read-only).
        if self.action == "partial_update":
            return CampaignChangeSerializer
        return super().get_serializer_class()

    @extend_schema(request=CampaignChangeSerializer, responses=CampaignSerializer)
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        """Rename the campaign or replace its instructions, in any status; a name another
        campaign of the project has is 409 ``duplicate``. Annotators see the new instructions
        on their next page load."""
        campaign = self.get_object()
        require_project_role(request=request, project_id=campaign.project_id,
                             roles=self.write_roles)
        form = self.get_serializer(campaign, data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        campaign_update(campaign=campaign, **form.validated_data)
        return Response(CampaignSerializer(campaign).data)

    def _set_status(self, new_status: str, from_status: str | None = None) -> Response:
        campaign = self.get_object()
        require_project_role(request=self.request, project_id=campaign.project_id,
                             roles=self.write_roles)
        campaign_set_status(campaign=campaign, status=new_status, from_status=from_status)
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"], url_path="open")
    def open_draft(self, request: Request, pk: str | None = None) -> Response:
        """Open a draft campaign for rating."""
        return self._set_status(CampaignStatus.ACTIVE, from_status=CampaignStatus.DRAFT)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._set_status(CampaignStatus.PAUSED)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._set_status(CampaignStatus.ACTIVE, from_status=CampaignStatus.PAUSED)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        return self._set_status(CampaignStatus.CLOSED)

    @extend_schema(responses=QualitySerializer)
    @action(detail=True, methods=["get"])
    def quality(self, request: Request, pk: str | None = None) -> Response:
        """Per-annotator gold accuracy and flags, agreement per criterion, latency outliers."""
        campaign = self.get_object()
        return Response({
            "annotators": [{**asdict(a), "flagged": a.flagged}
                           for a in annotator_quality(campaign=campaign)],
            "agreement": agreement_by_criterion(campaign=campaign),
            "latency_outliers": latency_outliers(campaign=campaign),
        })

    @extend_schema(responses=ImageReportSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])  # pages; no list filters
    def reports(self, request: Request, pk: str | None = None) -> Response:
        """Images and videos the annotators reported as broken, newest first (pages of 50)."""
        campaign = self.get_object()
        page = self.paginate_queryset(image_reports(campaign=campaign))
        return self.get_paginated_response(ImageReportSerializer(page, many=True).data)

    @extend_schema(request=AnnotatorsSerializer, responses=AnnotatorsSerializer)
    @action(detail=True, methods=["post"], url_path="annotators")
    def set_annotators(self, request: Request, pk: str | None = None) -> Response:
        """Choose who may rate the campaign (an empty list: every member of the project)."""
        campaign = self.get_object()
        require_project_role(request=request, project_id=campaign.project_id,
                             roles=self.write_roles)
        form = AnnotatorsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        campaign_set_annotators(campaign=campaign, annotators=members_named(
            project=campaign.project, usernames=form.validated_data["annotators"]))
        return Response({"annotators": sorted(
            campaign.annotators.values_list("username", flat=True))})

    @extend_schema(request=GoldInputSerializer, responses={201: GoldAnswerSerializer})
    @action(detail=True, methods=["post"])
    def gold(self, request: Request, pk: str | None = None) -> Response:
        """Add a gold pair with a known answer."""
        campaign = self.get_object()
        require_project_role(request=request, project_id=campaign.project_id,
                             roles=self.write_roles)
        form = GoldInputSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        task = gold_task_add(campaign=campaign, **form.validated_data)
        return Response({"task": task.pk}, status=status.HTTP_201_CREATED)

    @extend_schema(request=ExcludeInputSerializer, responses=ExcludeAnswerSerializer)
    @action(detail=True, methods=["post"])
    def exclude(self, request: Request, pk: str | None = None) -> Response:
        """Exclude (or re-include) an annotator's votes from statistics and exports."""
        campaign = self.get_object()
        require_project_role(request=request, project_id=campaign.project_id,
                             roles=self.write_roles)
        form = ExcludeInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        flag = annotator_set_excluded(campaign=campaign,
                                      annotator_id=form.validated_data["annotator"],
                                      excluded=form.validated_data["excluded"],
                                      note=form.validated_data["note"])
        return Response({"annotator": flag.annotator_id, "excluded": flag.excluded})
